using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// PROTOCOL.md §3, sites that sleep for I/O: filemap_fault (mm/filemap.c: maybe_unlock_mmap_for_io,
/// do_sync_mmap_readahead, lock_folio_maybe_drop_mmap) and do_swap_page (mm/memory.c: folio_lock_or_retry) release the
/// fault lock before waiting for a read on the first try (fault_flag_allow_retry_first) and return RETRY|MAJOR; the
/// TRIED retry maps the page from the page cache or swap cache without I/O; a TRIED attempt that must still read does
/// so under its lock.
/// </summary>
public class FaultIoRuleTests
{
    private const long P = TestMachines.Page;
    private const long A = TestMachines.AreaA;
    private const FaultFlags FirstTry = FaultFlags.AllowRetry | FaultFlags.Killable | FaultFlags.User;

    public static TheoryData<string> AllPolicies => new(FaultPolicies.All.Select(p => p.Name()));

    /// <summary>
    /// handle_mm_fault called as lock_mm_and_find_vma's caller does, under mmap_lock for read, on a disk file page not
    /// in the page cache; a writer (mmap_write_lock) arrives at 10 µs, while the read is in flight.
    /// </summary>
    private sealed class DirectFileFault
    {
        public VmFault First, Retry;
        public long FirstReturned, WriterGot = -1, RetryNs = -1, IoStart;
        public bool HeldAfterFirst, HeldAfterRetry;
        public long PteAfter;
        public SimHarness H { get; }
        public FileObject File { get; }

        public DirectFileFault(FaultFlags firstFlags, long readAheadBytes = FileObject.VmReadaheadBytes)
        {
            H = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
            var mm = H.Machine.CreateMm();
            var file = File = H.Machine.CreateFile("/data/f", diskBacked: true);
            file.ReadAheadBytes = readAheadBytes;
            var a = H.NewTask(0, mm); var w = H.NewTask(1, mm);
            H.Spawn(a, 0, async t =>
            {
                await Mmap.DoMmap(t, mm, A, 64 * P, VmFlags.Read | VmFlags.Shared, file);
                await MmapLock.MmapReadLock(t, mm);
                IoStart = t.Clock;
                First = await MmFault.HandleMmFault(t, mm.Tree.Find(A)!, A, firstFlags);
                FirstReturned = t.Clock;
                HeldAfterFirst = t.Holds(mm.MmapLock);
                if (!HeldAfterFirst)
                {
                    // do_user_addr_fault: RETRY → FAULT_FLAG_TRIED, lock_mm_and_find_vma again.
                    await MmapLock.MmapReadLock(t, mm);
                    long before = t.Clock;
                    Retry = await MmFault.HandleMmFault(t, mm.Tree.Find(A)!, A, firstFlags | FaultFlags.Tried);
                    RetryNs = t.Clock - before;
                    HeldAfterRetry = t.Holds(mm.MmapLock);
                }
                PteAfter = mm.PageTable.Read(A);
                MmapLock.MmapReadUnlock(t, mm);
            });
            H.Spawn(w, 10_000, async t =>
            {
                await MmapLock.MmapWriteLock(t, mm);
                WriterGot = t.Clock;
                MmapLock.MmapWriteUnlock(t, mm);
            });
            H.Run();
            H.CloseFrameAccounting();
        }

        public string Timeline =>
            $"handle_mm_fault entered at {IoStart} ns, returned {First} at {FirstReturned} ns (mmap_lock {(HeldAfterFirst ? "held" : "released")}); " +
            $"mmap_write_lock granted at {WriterGot} ns; TRIED retry returned {Retry} in {RetryNs} ns; pgmajfault {H.Machine.VmStat.pgmajfault}\n{TestMachines.Describe(H)}";
    }

    [Fact]
    public void FileFault_drops_fault_lock_for_io_and_retries()
    {
        var s = new DirectFileFault(FirstTry);
        Assert.True(s.IoStart < 10_000, "the read must be in flight when the writer arrives: " + s.Timeline);
        Assert.True(s.First == (VmFault.Retry | VmFault.Major), "filemap_fault's first try on an uncached page must return RETRY|MAJOR: " + s.Timeline);
        Assert.False(s.HeldAfterFirst, "maybe_unlock_mmap_for_io must have released mmap_lock: " + s.Timeline);
        Assert.True(s.WriterGot >= 0 && s.WriterGot < s.FirstReturned, "the writer must get mmap_lock while the fault waits for its read: " + s.Timeline);
        TestMachines.AssertClean(s.H);
    }

    [Fact]
    public void FileFault_tried_retry_maps_the_cached_page_without_io()
    {
        var s = new DirectFileFault(FirstTry);
        Assert.True(s.Retry == VmFault.Done, "the TRIED retry finds the page cached and up to date: a minor fault, 0: " + s.Timeline);
        Assert.True(s.HeldAfterRetry, "after a 0 result the caller still holds mmap_lock (§3): " + s.Timeline);
        Assert.True(s.RetryNs < s.H.Machine.Cost.FileReadNs, "the retry must not read again: " + s.Timeline);
        Assert.Equal(PteKind.Present, Pte.Kind(s.PteAfter));
        Assert.Equal(1, s.H.Machine.VmStat.pgmajfault);
        TestMachines.AssertClean(s.H);
    }

    [Fact]
    public void FileFault_on_a_tried_attempt_reads_under_the_fault_lock()
    {
        // fault_flag_allow_retry_first is false once TRIED: maybe_unlock_mmap_for_io keeps the lock, the read happens
        // under it and the page is mapped at once (MAJOR, no RETRY); the writer waits for the read.
        var s = new DirectFileFault(FirstTry | FaultFlags.Tried);
        Assert.True(s.First == VmFault.Major, "a TRIED attempt on an uncached page must read under the lock and return MAJOR: " + s.Timeline);
        Assert.True(s.HeldAfterFirst, s.Timeline);
        Assert.True(s.WriterGot >= s.FirstReturned, "the writer must wait for the read done under mmap_lock: " + s.Timeline);
        Assert.Equal(PteKind.Present, Pte.Kind(s.PteAfter));
        Assert.Equal(1, s.H.Machine.VmStat.pgmajfault);
        TestMachines.AssertClean(s.H);
    }

    [Fact]
    public void FileFault_sync_readahead_reads_the_read_around_window()
    {
        // ra_pages = 32 (VM_READAHEAD_PAGES): the window starts ra_pages/2 before the faulting index, clamped here to
        // the mapping's first page; the fault at index 40 reads 24..55, of which 32..55 were not cached.
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var file = h.Machine.CreateFile("/data/f", diskBacked: true);
        var cached = new List<int>();
        var majors = new List<long>();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 64 * P, VmFlags.Read | VmFlags.Shared, file);
            foreach (long page in new long[] { 0, 1, 31, 40, 32, 55, 63 })
            {
                await CpuAccess.Access(t, A + page * P, write: false);
                cached.Add(file.CachedPages);
                majors.Add(t.Machine.VmStat.pgmajfault);
            }
        });
        h.Run();
        Assert.Equal([32, 32, 32, 56, 56, 56, 64], cached);
        Assert.Equal([1L, 1, 1, 2, 2, 2, 3], majors);
        Assert.Equal(7, h.Machine.VmStat.pgfault);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void FileFault_without_readahead_reads_only_the_faulting_page()
    {
        var s = new DirectFileFault(FirstTry, readAheadBytes: 0);
        Assert.True(s.First == (VmFault.Retry | VmFault.Major), s.Timeline);
        Assert.Equal(1, s.File.CachedPages);
        TestMachines.AssertClean(s.H);
    }

    /// <summary>
    /// The whole loop under each policy: cpu0 faults on an uncached page of a disk file; at 10 µs, during the read,
    /// cpu1 munmaps the other half of the same VMA (mmap_write_lock, then vma_start_write on the VMA it splits).
    /// </summary>
    [Theory]
    [MemberData(nameof(AllPolicies))]
    public void FileFault_io_lets_a_writer_through_and_counts_one_pgfault_and_one_pgmajfault(string policyName)
    {
        var policy = FaultPolicies.Parse(policyName);
        var h = new SimHarness(TestMachines.Spec(policy));
        var mm = h.Machine.CreateMm();
        var file = h.Machine.CreateFile("/data/f", diskBacked: true);
        long faultStart = 0, faultEnd = 0, writerEnd = 0;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 64 * P, VmFlags.Read | VmFlags.Shared, file);
            faultStart = t.Clock;
            await CpuAccess.Access(t, A + 3 * P, write: false);
            faultEnd = t.Clock;
        });
        h.Spawn(h.NewTask(1, mm), 10_000, async t =>
        {
            await Munmap.DoMunmap(t, mm, A + 48 * P, A + 64 * P);
            writerEnd = t.Clock;
        });
        h.Run();
        h.CloseFrameAccounting();
        var vs = h.Machine.VmStat;
        string timeline = $"{policyName}: fault {faultStart}..{faultEnd} ns, munmap returned at {writerEnd} ns; pgfault {vs.pgfault}, pgmajfault {vs.pgmajfault}, " +
                          $"vma_lock success/abort/retry {vs.vma_lock_success}/{vs.vma_lock_abort}/{vs.vma_lock_retry}\n{TestMachines.Describe(h)}";
        Assert.True(faultStart < 10_000, timeline);
        Assert.True(writerEnd < faultEnd, "munmap must not wait for a fault's read (the fault lock is dropped for the I/O): " + timeline);
        Assert.True(vs.pgfault == 1, "mm_account_fault: one fault, counted once, on the attempt that finished it: " + timeline);
        Assert.True(vs.pgmajfault == 1, "filemap_fault counts PGMAJFAULT where the page was not cached, once: " + timeline);
        // L2: one VMA attempt (6.6 returns RETRY before ->fault; 6.12 reads under it and returns RETRY|MAJOR; the other
        // bases abort on a file VMA before handle_mm_fault), one mmap_lock attempt unless the VMA one was MAJOR (6.12:
        // TRIED at once), then the TRIED attempt that maps from the page cache.
        long attempts = policy switch
        {
            FaultPolicy.Merged or FaultPolicy.PtlDrop => 3,
            _ => 2,
        };
        Assert.True(vs.HandleMmFaultCalls == attempts, $"handle_mm_fault ran {vs.HandleMmFaultCalls} times, expected {attempts}: " + timeline);
        Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(A + 3 * P)));
        TestMachines.AssertClean(h); // includes L2 (the retry bound) and S7 (the RETRY contract)
    }

    /// <summary>
    /// cpu0 maps 64 anonymous pages, touches 4, pages the first out (MADV_PAGEOUT). cpu1 faults it back at 200 µs; at
    /// 205 µs, during the swap read, cpu2 munmaps the other half of the same VMA.
    /// </summary>
    [Theory]
    [MemberData(nameof(AllPolicies))]
    public void SwapIn_drops_fault_lock_for_io_and_retries(string policyName)
    {
        var policy = FaultPolicies.Parse(policyName);
        var h = new SimHarness(TestMachines.Spec(policy));
        var mm = h.Machine.CreateMm();
        long faultEnd = 0, writerEnd = 0, writerWait = -1;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 64 * P, VmFlags.Read | VmFlags.Write);
            for (int i = 0; i < 4; i++)
                await CpuAccess.Access(t, A + i * P, write: true);
            await PageOut.MadvisePageout(t, mm, A, A + P);
        });
        h.Spawn(h.NewTask(1, mm), 200_000, async t =>
        {
            await CpuAccess.Access(t, A, write: false);
            faultEnd = t.Clock;
        });
        h.Spawn(h.NewTask(2, mm), 205_000, async t =>
        {
            writerWait = await Munmap.DoMunmap(t, mm, A + 32 * P, A + 64 * P);
            writerEnd = t.Clock;
        });
        h.Run();
        h.CloseFrameAccounting();
        var vs = h.Machine.VmStat;
        string timeline = $"{policyName}: swap-in fault ended {faultEnd} ns, munmap returned at {writerEnd} ns (waited {writerWait} ns); pgfault {vs.pgfault}, " +
                          $"pgmajfault {vs.pgmajfault}, pswpin {vs.pswpin}, vma_lock success/abort/retry {vs.vma_lock_success}/{vs.vma_lock_abort}/{vs.vma_lock_retry}\n{TestMachines.Describe(h)}";
        // lock-dropped (v3) leaves every release under the VMA lock to handle_mm_fault's central one, after the wait:
        // a writer of the VMA waits for the read there.
        if (policy == FaultPolicy.LockDropped)
            Assert.True(writerWait > 0, "under lock-dropped the VMA lock is held through the read, so vma_start_write waits: " + timeline);
        else
            Assert.True(writerEnd < faultEnd, "munmap must not wait for a fault's swap read (folio_lock_or_retry released the fault lock): " + timeline);
        Assert.True(vs.pswpin == 1 && vs.pgmajfault == 1, "one swap read, one PGMAJFAULT: " + timeline);
        Assert.True(vs.pgfault == 5, "4 first touches and the swap-in, each counted once: " + timeline);
        Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(A)));
        Assert.Empty(h.Machine.Swap.SwapCache);
        Assert.Equal(0, h.Machine.Swap.UsedSlots);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void SwapIn_of_an_entry_zapped_during_the_read_frees_the_folio_and_the_slot()
    {
        // The read is in flight without any lock; munmap of the whole VMA zaps the swap entry meanwhile
        // (free_swap_and_cache finds the folio locked and leaves it): when the read ends, the folio leaves the swap
        // cache and its frame and slot are freed.
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 64 * P, VmFlags.Read | VmFlags.Write);
            for (int i = 0; i < 4; i++)
                await CpuAccess.Access(t, A + i * P, write: true);
            await PageOut.MadvisePageout(t, mm, A, A + P);
        });
        h.Spawn(h.NewTask(1, mm), 200_000, async t => await CpuAccess.Access(t, A, write: false));
        h.Spawn(h.NewTask(2, mm), 205_000, async t => await Munmap.DoMunmap(t, mm, A, A + 64 * P));
        h.Run();
        h.CloseFrameAccounting();
        Assert.Empty(h.Machine.Swap.SwapCache);
        Assert.Equal(0, h.Machine.Swap.UsedSlots);
        Assert.True(h.Machine.Frames.Anon == 0 && h.Machine.Frames.InFlight == 0, $"frames left: {h.Machine.Frames}");
        TestMachines.AssertClean(h);
    }
}
