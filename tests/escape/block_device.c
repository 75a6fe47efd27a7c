/* block_device: opens a host block device (a disk, below every file and every mount) both
 * through the in-process kernel (`direct`) and past it (`gate`):
 *
 *   block_device RUNTIME DEVICE
 *
 *   read_WAY=E|read:N:BYTES   openat(DEVICE, O_RDONLY) and a read of its first bytes
 *   rdwr_WAY=E|done           openat(DEVICE, O_RDWR), closed at once: nothing is written
 *
 * The test backs DEVICE (a loop device) with an image that lies in a hidden directory, so
 * that reading the device reads what the view hides. */
#include "escape.h"

#include <fcntl.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: block_device RUNTIME DEVICE\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    for (unsigned w = 0; w < sizeof WAYS / sizeof WAYS[0]; w++) {
        const struct way *way = &WAYS[w];
        long fd = way->call(SYS_openat, AT_FDCWD, (long)argv[2], O_RDONLY | O_CLOEXEC, 0, 0);
        if (fd < 0) {
            report("read", way->name, fd);
        } else {
            char buf[96];
            long n = way->call(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0);
            way->call(SYS_close, fd, 0, 0, 0, 0);
            for (long i = 0; i < n; i++)
                if (buf[i] < 0x20 || buf[i] > 0x7e)
                    buf[i] = '.';
            buf[n > 0 ? n : 0] = 0;
            printf("read_%s=read:%ld:%s\n", way->name, n, buf);
        }
        fd = way->call(SYS_openat, AT_FDCWD, (long)argv[2], O_RDWR | O_CLOEXEC, 0, 0);
        report("rdwr", way->name, fd);
        if (fd >= 0)
            way->call(SYS_close, fd, 0, 0, 0, 0);
    }
    return 0;
}
