// main.c: the test runner. Runs every test in a child process (isolation from
// aborts and from each other's OpenMP state), prints one line per test, and ends
// with "N passed, N failed"; exits 1 on any failure.
//   tests/run            all tests
//   tests/run NAME...    tests whose name contains one of the arguments
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/common.h"
#include "test.h"
#include "test_list.h"

#define ENTRY(name) {#name, name},
static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {TEST_LIST(ENTRY)};
#undef ENTRY

static int selected(const char *name, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    runtime_choose(argv);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        double t0 = now_seconds();
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            threads_set(2);
            tests[i].fn();
            fflush(stdout);
            _exit(test_failures ? 1 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        double sec = now_seconds() - t0;
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (ok) passed++;
        else failed++;
        printf("%s %s (%.2fs)%s\n", ok ? "ok  " : "FAIL", tests[i].name, sec,
               WIFSIGNALED(status) ? " [crashed]" : "");
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
