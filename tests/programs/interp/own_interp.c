/* A program interpreter of its own, as ld.so is to a dynamic program. Its one call site sets
 * eax, then copies rax into r8 before the syscall, as a wrapper may: a patched site must keep
 * the code's meaning (r8 == 12, brk's number). It checks, then execs its program again with one
 * more argument until there are four, so that later images load it patched. Exit status: 0,
 * or 64 + the low bits of what r8 held. */
__asm__(".globl _start\n"
        "_start:\n"
        "  mov %rsp, %r12\n"
        "  mov $0x1234, %rax\n"
        "  xor %edi, %edi\n"
        "  .byte 0xb8\n"
        "  .long 12\n"
        "  mov %rax, %r8\n"
        "  syscall\n"
        "  mov %r12, %rdi\n"
        "  mov %r8, %rsi\n"
        "  and $-16, %rsp\n"
        "  call interp_main\n"
        "  hlt\n");

static long sys3(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

__attribute__((used)) void interp_main(long *sp, long r8) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (r8 != 12) {
        sys3(60, 64 + (r8 & 63), 0, 0);
    }
    if (argc < 4) {
        char *next[8];
        static char more[] = "x";
        for (long i = 0; i < argc; i++) {
            next[i] = argv[i];
        }
        next[argc] = more;
        next[argc + 1] = 0;
        sys3(59, (long)argv[0], (long)next, (long)envp);
        sys3(60, 3, 0, 0);
    }
    sys3(60, 0, 0, 0);
}
