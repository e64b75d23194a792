/* A process that forks without exec: the parent fills a buffer, forks; the child writes half of it and exits;
 * the parent waits, then writes all of it. Every write after the fork breaks copy-on-write (do_wp_page). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long pages = argc > 1 ? atol(argv[1]) : 256;
    long page = sysconf(_SC_PAGESIZE);
    char *buf = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 1;
    for (long i = 0; i < pages; i++) buf[i * page] = 1;
    pid_t child = fork();
    if (child == 0) {
        for (long i = 0; i < pages / 2; i++) buf[i * page] = 2;
        _exit(0);
    }
    waitpid(child, NULL, 0);
    for (long i = 0; i < pages; i++) buf[i * page] = 3;
    return 0;
}
