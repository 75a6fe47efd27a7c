// fexecve of a close-on-exec descriptor: the descriptor is gone once the new image starts,
// so the runtime must find the program by the file's name.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

extern char **environ;

int main(void) {
    int fd = open("/bin/echo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    char *argv[] = {"echo", "fexecve=ok", NULL};
    fexecve(fd, argv, environ);
    perror("fexecve");
    return 1;
}
