// Fixture (never compiled): kernels and tokenizer are siblings; neither links the other.
#include "base/tensor.h"
#include "kernels/kernels.h"
#include "tokenizer/utf8.h"
#include <vector>
