/* Hello, with what a program usually asks about its host: argv, uname, gethostname.
 * Built dynamic, -static, -static-pie and -no-pie by the tests. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct utsname u;
    char host[256];
    if (uname(&u) != 0) {
        perror("uname");
        return 1;
    }
    if (gethostname(host, sizeof host) != 0) {
        perror("gethostname");
        return 1;
    }
    printf("hello\n");
    for (int i = 1; i < argc; i++)
        printf("arg%d=%s\n", i, argv[i]);
    printf("uname=%s\n", u.nodename);
    printf("gethostname=%s\n", host);
    printf("sysname=%s\n", u.sysname);
    printf("machine=%s\n", u.machine);
    return 0;
}
