/*
 * will-it-scale page_fault1, as a fixed amount of work: each of THREADS threads maps 128 MiB of private anonymous
 * memory, writes one byte per page (one minor fault each), unmaps it, and repeats ROUNDS times. Prints one line:
 * "faults SECONDS THREADS" (faults = pages written; seconds of wall time from the first mmap to the last munmap).
 * The bench's native reference for the emulator's page-fault1 rate on the same host (bench/README.md).
 * Build: cc -O2 -pthread -o page_fault1 page_fault1.c    Run: ./page_fault1 ROUNDS THREADS
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEMSIZE (128UL * 1024 * 1024)

static long rounds;

static void *loop(void *arg)
{
    long page = sysconf(_SC_PAGESIZE);
    long *faults = arg;
    for (long r = 0; r < rounds; r++) {
        char *c = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c == MAP_FAILED) {
            perror("mmap");
            exit(1);
        }
        for (unsigned long i = 0; i < MEMSIZE; i += page) {
            c[i] = 0;
            (*faults)++;
        }
        munmap(c, MEMSIZE);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atol(argv[1]) : 8;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (rounds < 1 || threads < 1) {
        fprintf(stderr, "usage: page_fault1 ROUNDS THREADS\n");
        return 2;
    }
    pthread_t *t = calloc(threads, sizeof *t);
    long *faults = calloc(threads, sizeof *faults);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, loop, &faults[i]);
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += faults[i];
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%ld %.6f %d\n", total, (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, threads);
    return 0;
}
