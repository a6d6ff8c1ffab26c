// Fixture (never compiled): io does not link model.
#pragma once
#include "base/status.h"
#include "model/config.h"
