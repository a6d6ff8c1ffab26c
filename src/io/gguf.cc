// Placeholder: the GGUF reader/writer is implemented in a follow-up change.
#include "io/gguf.h"
