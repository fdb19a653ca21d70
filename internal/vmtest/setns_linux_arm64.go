package vmtest

// syscall has no SYS_SETNS for arm64; the number is fixed by the kernel ABI.
const sysSetns = 268
