namespace DistEmu.Kernel.Stats;

/// <summary>
/// The event counters of /proc/vmstat that the fault and migration paths bump, named as the kernel names them
/// (mm/vmstat.c vmstat_text). <see cref="Faults"/> is perf's page-faults event (one per entry into
/// do_user_addr_fault), not a vmstat line; pgfault is counted as mm_account_fault does (once per handle_mm_fault that
/// did not return RETRY: a retried fault counts once); <see cref="HandleMmFaultCalls"/> counts every call.
/// </summary>
public sealed class VmStat
{
    public long pgfault;
    public long pgmajfault;
    public long vma_lock_success;
    public long vma_lock_abort;
    public long vma_lock_retry;
    public long vma_lock_miss;
    public long numa_hint_faults;
    public long numa_pages_migrated;
    public long pgmigrate_success;
    public long pgmigrate_fail;
    public long numa_pte_updates;
    public long pswpin;
    public long pswpout;
    public long nr_tlb_remote_flush;
    public long nr_tlb_remote_flush_received;
    /// <summary>A THP allocated and PMD-mapped by a fault (do_huge_pmd_anonymous_page).</summary>
    public long thp_fault_alloc;
    /// <summary>A fault that could have had a THP but found no free 2 MiB block and fell back to 4 KiB pages.</summary>
    public long thp_fault_fallback;
    /// <summary>A THP migrated whole (its 512 pages also count in pgmigrate_success).</summary>
    public long thp_migration_success;
    /// <summary>A THP that could not be migrated (its 512 pages also count in pgmigrate_fail).</summary>
    public long thp_migration_fail;
    /// <summary>A PMD mapping split into 512 PTEs (__split_huge_pmd).</summary>
    public long thp_split_pmd;

    /// <summary>User faults taken (perf's page-faults software event), not a /proc/vmstat line.</summary>
    public long Faults;
    /// <summary>Faults that ended in SIGSEGV (access error or no VMA).</summary>
    public long Sigsegv;
    /// <summary>Faults that ended in SIGBUS or OOM.</summary>
    public long Sigbus;
    /// <summary>handle_mm_fault calls, retried attempts included (pgfault leaves those out); not a /proc/vmstat line.</summary>
    public long HandleMmFaultCalls;

    /// <summary>The /proc/vmstat lines, in the kernel's order.</summary>
    public IEnumerable<KeyValuePair<string, long>> Lines()
    {
        yield return new("pgfault", pgfault);
        yield return new("pgmajfault", pgmajfault);
        yield return new("pswpin", pswpin);
        yield return new("pswpout", pswpout);
        yield return new("numa_pte_updates", numa_pte_updates);
        yield return new("numa_hint_faults", numa_hint_faults);
        yield return new("numa_pages_migrated", numa_pages_migrated);
        yield return new("pgmigrate_success", pgmigrate_success);
        yield return new("pgmigrate_fail", pgmigrate_fail);
        yield return new("thp_migration_success", thp_migration_success);
        yield return new("thp_migration_fail", thp_migration_fail);
        yield return new("nr_tlb_remote_flush", nr_tlb_remote_flush);
        yield return new("nr_tlb_remote_flush_received", nr_tlb_remote_flush_received);
        yield return new("thp_fault_alloc", thp_fault_alloc);
        yield return new("thp_fault_fallback", thp_fault_fallback);
        yield return new("thp_split_pmd", thp_split_pmd);
        yield return new("vma_lock_success", vma_lock_success);
        yield return new("vma_lock_abort", vma_lock_abort);
        yield return new("vma_lock_retry", vma_lock_retry);
        yield return new("vma_lock_miss", vma_lock_miss);
    }

    /// <summary>Every field, in a fixed order (for messages between grains).</summary>
    public long[] ToArray() =>
    [
        pgfault, pgmajfault, vma_lock_success, vma_lock_abort, vma_lock_retry, vma_lock_miss, numa_hint_faults,
        numa_pages_migrated, pgmigrate_success, pgmigrate_fail, numa_pte_updates, pswpin, pswpout, nr_tlb_remote_flush,
        nr_tlb_remote_flush_received, Faults, Sigsegv, Sigbus, HandleMmFaultCalls, thp_fault_alloc, thp_fault_fallback,
        thp_migration_success, thp_migration_fail, thp_split_pmd,
    ];

    public void AddArray(long[] a)
    {
        pgfault += a[0]; pgmajfault += a[1]; vma_lock_success += a[2]; vma_lock_abort += a[3]; vma_lock_retry += a[4];
        vma_lock_miss += a[5]; numa_hint_faults += a[6]; numa_pages_migrated += a[7]; pgmigrate_success += a[8];
        pgmigrate_fail += a[9]; numa_pte_updates += a[10]; pswpin += a[11]; pswpout += a[12]; nr_tlb_remote_flush += a[13];
        nr_tlb_remote_flush_received += a[14]; Faults += a[15]; Sigsegv += a[16]; Sigbus += a[17];
        if (a.Length > 18) HandleMmFaultCalls += a[18];
        if (a.Length > 23)
        {
            thp_fault_alloc += a[19]; thp_fault_fallback += a[20]; thp_migration_success += a[21]; thp_migration_fail += a[22];
            thp_split_pmd += a[23];
        }
    }

    public void Add(VmStat o)
    {
        pgfault += o.pgfault; pgmajfault += o.pgmajfault; vma_lock_success += o.vma_lock_success;
        vma_lock_abort += o.vma_lock_abort; vma_lock_retry += o.vma_lock_retry; vma_lock_miss += o.vma_lock_miss;
        numa_hint_faults += o.numa_hint_faults; numa_pages_migrated += o.numa_pages_migrated;
        pgmigrate_success += o.pgmigrate_success; pgmigrate_fail += o.pgmigrate_fail; numa_pte_updates += o.numa_pte_updates;
        pswpin += o.pswpin; pswpout += o.pswpout; nr_tlb_remote_flush += o.nr_tlb_remote_flush;
        nr_tlb_remote_flush_received += o.nr_tlb_remote_flush_received; Faults += o.Faults; Sigsegv += o.Sigsegv; Sigbus += o.Sigbus;
        HandleMmFaultCalls += o.HandleMmFaultCalls;
        thp_fault_alloc += o.thp_fault_alloc; thp_fault_fallback += o.thp_fault_fallback;
        thp_migration_success += o.thp_migration_success; thp_migration_fail += o.thp_migration_fail; thp_split_pmd += o.thp_split_pmd;
    }
}
