/* No libc at all: its own _start, raw `syscall` instructions, no vDSO use.
 * Build: gcc -nostdlib -static -ffreestanding -fno-stack-protector -fno-builtin
 * Prints uname's nodename, 16 bytes of getrandom in hex, and CLOCK_REALTIME's seconds,
 * then exit_group(0) (or exit status 1 if a call failed). */
typedef unsigned long u64;

#define SYS_write 1
#define SYS_uname 63
#define SYS_clock_gettime 228
#define SYS_exit_group 231
#define SYS_getrandom 318

static long sys3(long n, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static void put(const char *s, u64 n) { sys3(SYS_write, 1, (long)s, (long)n); }

static void puts0(const char *s) {
    u64 n = 0;
    while (s[n])
        n++;
    put(s, n);
}

static void put_u64(u64 v) {
    char buf[24];
    int i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(buf + i, sizeof buf - (u64)i);
}

struct utsname_raw {
    char field[6][65];
};

struct timespec_raw {
    long sec, nsec;
};

static __attribute__((noreturn)) void exit_group(int code) {
    for (;;)
        sys3(SYS_exit_group, code, 0, 0);
}

__attribute__((used)) void cmain(long *sp) {
    (void)sp;
    struct utsname_raw u;
    if (sys3(SYS_uname, (long)&u, 0, 0) != 0)
        exit_group(1);
    puts0("uname=");
    puts0(u.field[1]);
    puts0("\n");

    unsigned char rnd[16];
    if (sys3(SYS_getrandom, (long)rnd, sizeof rnd, 0) != sizeof rnd)
        exit_group(1);
    static const char hex[] = "0123456789abcdef";
    char out[2 * sizeof rnd];
    for (unsigned i = 0; i < sizeof rnd; i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    puts0("random=");
    put(out, sizeof out);
    puts0("\n");

    struct timespec_raw ts;
    if (sys3(SYS_clock_gettime, 0 /* CLOCK_REALTIME */, (long)&ts, 0) != 0)
        exit_group(1);
    puts0("time=");
    put_u64((u64)ts.sec);
    puts0("\n");
    exit_group(0);
}

__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call cmain\n"
        "  hlt\n");
