/* Randomness a program can get from the kernel: getrandom (twice, and with GRND_NONBLOCK),
 * getentropy, and the 16 bytes of AT_RANDOM. Prints each in hex. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <unistd.h>

static void hex(const char *key, const unsigned char *p, size_t n) {
    printf("%s=", key);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

int main(void) {
    unsigned char a[16], b[16], c[16], d[16];
    if (getrandom(a, sizeof a, 0) != sizeof a || getrandom(b, sizeof b, 0) != sizeof b ||
        getrandom(c, sizeof c, GRND_NONBLOCK) != sizeof c) {
        perror("getrandom");
        return 1;
    }
    if (getentropy(d, sizeof d) != 0) {
        perror("getentropy");
        return 1;
    }
    hex("getrandom1", a, sizeof a);
    hex("getrandom2", b, sizeof b);
    hex("getrandom_nonblock", c, sizeof c);
    hex("getentropy", d, sizeof d);
    const unsigned char *at_random = (const unsigned char *)getauxval(AT_RANDOM);
    if (!at_random) {
        printf("no AT_RANDOM\n");
        return 1;
    }
    hex("at_random", at_random, 16);
    printf("calls_differ=%d\n", memcmp(a, b, sizeof a) != 0);
    return 0;
}
