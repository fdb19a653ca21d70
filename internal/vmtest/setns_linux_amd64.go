package vmtest

// syscall has no SYS_SETNS for amd64; the number is fixed by the kernel ABI.
const sysSetns = 308
