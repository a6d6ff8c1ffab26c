"""Optional adapters: gembed.integrations.langchain (langchain-core), gembed.integrations.llama_index (llama-index-core)."""
