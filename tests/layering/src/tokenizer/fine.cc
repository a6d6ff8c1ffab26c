// Fixture (never compiled): tokenizer links io, so this include is allowed.
#include "io/mmap.h"
