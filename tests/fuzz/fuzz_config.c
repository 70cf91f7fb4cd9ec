/*
 * fuzz_config.c -- libFuzzer harness for serve's config file
 * (src/serve/config.c with the SLA, delivery, drafting and orchestration
 * sections it hands to other modules).  config_load_file reads a path, so
 * the input goes to a memfd and is read through /proc/self/fd/N: the same
 * code as for a file on disk, with no disk involved.
 *
 * Invariant beyond "no crash, no sanitizer report": a refused file says
 * why in the diagnostics, naming the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "serve/config.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-config", 0);
    if (fd < 0)
        abort();
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct config c;
    struct buf diag;
    buf_init(&diag, 0);
    config_init(&c);
    int rc = config_load_file(&c, path, &diag);
    if (rc && (!diag.len || !memmem(diag.data, diag.len, path, strlen(path))))
        abort();
    config_cleanup(&c);
    buf_cleanup(&diag);
    close(fd);
    return 0;
}
