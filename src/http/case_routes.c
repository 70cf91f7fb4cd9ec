#include "http/http_int.h"
const struct route http_case_routes[] = {{0}};
