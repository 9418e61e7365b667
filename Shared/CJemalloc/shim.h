// jemalloc's control interface, the one function of it the services call. Declared here rather
// than through <jemalloc/jemalloc.h>, which declares malloc and the rest again. Linking the
// library is what makes it the process's allocator (see Shared/Allocator).
#include <stddef.h>

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
