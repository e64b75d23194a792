using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Migration;

public enum MigrateMode
{
    /// <summary>MIGRATE_ASYNC: NUMA balancing; trylock only, give up rather than sleep.</summary>
    Async,
    /// <summary>MIGRATE_SYNC: move_pages and the migrator; sleep for the folio lock.</summary>
    Sync,
}

/// <summary>
/// migrate_pages of anonymous folios (mm/migrate.c): migrate_pages_batch with its two passes, migrate_folio_unmap over
/// the whole batch, one try_to_unmap_flush, then migrate_folio_move folio by folio (move_to_new_folio,
/// remove_migration_ptes, unlock).
/// </summary>
public static class MigratePages
{
    /// <summary>NR_MAX_BATCHED_MIGRATION: folios unmapped together before the first is moved (6.3+).</summary>
    public const int MaxBatch = 512;

    /// <summary>One folio of a batch: where it is mapped, its (head) frame, its size, and how far it got.</summary>
    private sealed class Folio(long addr, long frame, bool huge)
    {
        public long Addr { get; } = addr;
        public long Frame { get; } = frame;
        /// <summary>A PMD-mapped THP: one folio of 512 pages, unmapped as one PMD migration entry and copied in one step.</summary>
        public bool Huge { get; } = huge;
        public int Pages => Huge ? NumaNode.HugeFrames : 1;
        /// <summary>Its migration entry is installed (it is locked and unmapped); else it failed before that.</summary>
        public bool Unmapped { get; set; }
        /// <summary>Phase boundaries for the observer: start, locked, unmapped, copied, remapped, unlocked.</summary>
        public long[]? Phases { get; set; }
    }

    /// <summary>One folio (migrate_misplaced_folio for a NUMA hinting fault): a batch of one.</summary>
    public static async ValueTask<bool> MigrateFolio(EmuTask t, Vma vma, long addr, long frame, int dstNode, MigrateMode mode) =>
        await MigrateBatch(t, vma, [(addr, frame)], dstNode, mode) > 0;

    /// <summary>
    /// Move the folios of <paramref name="pages"/> (frames mapped in <paramref name="vma"/>'s mm) to
    /// <paramref name="dstNode"/>, <see cref="MaxBatch"/> at a time. Never takes a VMA lock; reaches each entry by rmap.
    /// Per batch: for every folio, (1) lock it (trylock when async) and (2) under its PTL replace the entry by a
    /// migration entry; then (3) one TLB flush over the batch; then folio by folio (4) copy to a new frame (time by size
    /// and distance), (5) under the PTL replace the migration entry by the new frame — or, if munmap zapped it
    /// meanwhile, drop the copy — and (6) unlock the source folio, waking every waiter. A fault on the k-th folio of a
    /// batch therefore waits for k copies. A THP (a frame that heads a large folio, given at its 2 MiB-aligned address)
    /// is one folio: one PMD migration entry (set_pmd_migration_entry), one 2 MiB copy, one remap (remove_migration_pmd);
    /// a batch holds up to <see cref="MaxBatch"/> pages, so a THP fills one. Counts pgmigrate_success / pgmigrate_fail
    /// in pages (512 for a THP, as the kernel does) and thp_migration_success / thp_migration_fail; returns pages moved.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public static async ValueTask<int> MigrateBatch(EmuTask t, Vma vma, IReadOnlyList<(long Addr, long Frame)> pages, int dstNode, MigrateMode mode)
    {
        var m = t.Machine;
        int moved = 0;
        int next = 0;
        while (next < pages.Count)
        {
            // migrate_pages: folios go into a batch until it holds NR_MAX_BATCHED_MIGRATION pages.
            var batch = new List<Folio>(Math.Min(MaxBatch, pages.Count - next));
            int nrPages = 0;
            while (next < pages.Count && nrPages < MaxBatch)
            {
                var (addr, frame) = pages[next++];
                bool huge = m.Folios.IsLarge(frame);
                var f = new Folio(huge ? HugeMemory.HugeAlign(m, addr) : m.PageAlign(addr), frame, huge);
                batch.Add(f);
                nrPages += f.Pages;
            }
            moved += await MigrateOneBatch(t, vma, batch, dstNode, mode);
        }
        return moved;
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<int> MigrateOneBatch(EmuTask t, Vma vma, List<Folio> batch, int dstNode, MigrateMode mode)
    {
        var m = t.Machine;
        var mm = vma.Mm;
        long lo = long.MaxValue, hi = long.MinValue;
        // First pass (migrate_folio_unmap): lock and unmap every folio of the batch.
        foreach (var f in batch)
        {
            m.Events.Record(t, EventKind.MigrateBegin, vma.Id, f.Addr, f.Frame);
            if (m.Observer != null) f.Phases = [t.Clock, 0, 0, 0, 0, 0];
            await t.Delay(m.Cost.MigrateBaseNs);
            if (!await Unmap(t, vma, f, mode))
            {
                Fail(t, vma, f);
                continue;
            }
            lo = Math.Min(lo, f.Addr);
            hi = Math.Max(hi, f.Addr + (long)m.Spec.PageSize * f.Pages);
        }
        // try_to_unmap_flush: one flush for the whole batch.
        if (lo < hi)
            await TlbFlush.FlushRange(t, mm, lo, hi);
        // Second pass (migrate_folio_move): copy, remap and unlock each in turn.
        int moved = 0;
        foreach (var f in batch)
        {
            if (!f.Unmapped) continue;
            if (f.Phases != null) f.Phases[2] = t.Clock;
            if (f.Huge ? await MoveHuge(t, vma, f, dstNode) : await Move(t, vma, f, dstNode))
                moved += f.Pages;
        }
        return moved;
    }

    /// <summary>(1) and (2) for one folio: lock it, and under its PTL replace its present entry by a migration entry.</summary>
    private static async ValueTask<bool> Unmap(EmuTask t, Vma vma, Folio f, MigrateMode mode)
    {
        var m = t.Machine;
        var pt = vma.Mm.PageTable;
        if (mode == MigrateMode.Async)
        {
            // migrate_folio_unmap returns -EAGAIN; migrate_pages_batch retries it a few passes, then counts the
            // folio in nr_failed_pages, i.e. pgmigrate_fail (mm/migrate.c): a lost trylock is a failure there too.
            if (!m.Folios.TryLock(t, f.Frame))
                return false;
        }
        else
        {
            await m.Folios.Lock(t, f.Frame);
        }
        if (f.Phases != null) f.Phases[1] = t.Clock;
        // try_to_migrate: the rmap walk finds the mapping in the current page table.
        var page = pt.Lookup(f.Addr);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, f.Addr, "try_to_migrate", viaRmap: true);
        if (page is null)
        {
            m.Folios.Unlock(t, f.Frame);
            return false;
        }
        if (f.Huge)
            return await UnmapHuge(t, vma, f, page);
        int i = pt.IndexOf(f.Addr);
        await page.Ptl.AcquireWrite(t);
        long pte = page[i];
        if (Pte.Kind(pte) is not (PteKind.Present or PteKind.ProtNone) || Pte.Frame(pte) != f.Frame || Pte.IsFile(pte))
        {
            page.Ptl.Release(t, LockMode.Write);
            m.Folios.Unlock(t, f.Frame);
            return false;
        }
        m.Sanitizer.CheckMigrationEntryInstall(t, vma, f.Addr, f.Frame);
        pt.Set(page, i, Pte.Migration(f.Frame, Pte.IsWritable(pte)));
        m.Folios.AddMigrationEntry(f.Frame);
        m.Events.Record(t, EventKind.PteSet, vma.Id, f.Addr, page[i]);
        await t.Delay(m.Cost.PteUpdateNs);
        page.Ptl.Release(t, LockMode.Write);
        f.Unmapped = true;
        return true;
    }

    /// <summary>(4) to (6) for one unmapped folio: copy it, remove its migration entry, unlock it, settle the frames.</summary>
    private static async ValueTask<bool> Move(EmuTask t, Vma vma, Folio f, int dstNode)
    {
        var m = t.Machine;
        var pt = vma.Mm.PageTable;
        long addr = f.Addr, frame = f.Frame;
        await t.Preempt(PreemptSite.MigrateBeforeCopy);
        // (4) allocate on the destination node and copy.
        long dst = await AllocOnNode(t, dstNode);
        bool copied = dst >= 0;
        if (copied)
            await t.Delay(m.Cost.PageBandwidthNs(m.Spec.PageSize, m.Distance(m.NodeOfFrame(frame), dstNode)));
        if (f.Phases != null) f.Phases[3] = t.Clock;
        // (5) remove_migration_ptes.
        var now = pt.Lookup(addr);
        bool remapped = false;
        if (now != null)
        {
            int i = pt.IndexOf(addr);
            await now.Ptl.AcquireWrite(t);
            long cur = now[i];
            if (Pte.Kind(cur) == PteKind.Migration && Pte.Frame(cur) == frame)
            {
                pt.Set(now, i, Pte.Present(copied ? dst : frame, Pte.IsWritable(cur)));
                m.Folios.RemoveMigrationEntry(frame);
                m.Events.Record(t, EventKind.PteSet, vma.Id, addr, now[i]);
                await t.Delay(m.Cost.PteUpdateNs);
                remapped = true;
            }
            now.Ptl.Release(t, LockMode.Write);
        }
        if (f.Phases != null) f.Phases[4] = t.Clock;
        // (6) unlock the source: wakes every migration_entry_wait sleeper. Then settle the frames.
        m.Folios.Unlock(t, frame);
        if (f.Phases != null)
        {
            f.Phases[5] = t.Clock;
            m.Observer!.OnMigrate(t, vma.Id, addr, frame, dstNode, f.Phases, copied);
        }
        if (copied)
        {
            m.Frames.InFlight--;
            if (remapped)
            {
                m.Frames.Anon++;
                m.Folios.MigrateLastCpupid(frame, dst);
            }
            else
                m.FreeFrame(dst);
        }
        if (copied || !remapped)
        {
            // The source is unmapped now (moved, or zapped by munmap while we held it): free it.
            m.Frames.Anon--;
            m.FreeFrame(frame);
        }
        m.Events.Record(t, EventKind.MigrateEnd, vma.Id, addr, copied ? 1 : 0);
        if (!copied)
            return Fail(t, vma, f);
        m.VmStat.pgmigrate_success++;
        return true;
    }

    /// <summary>
    /// (2) for a THP (try_to_migrate_one → set_pmd_migration_entry): under pmd_lock, if the PMD still maps this folio,
    /// replace the whole PMD by one PMD migration entry (its 512 per-page entries all point at the head frame, so a
    /// fault on any page waits on the one folio: pmd_migration_entry_wait).
    /// </summary>
    private static async ValueTask<bool> UnmapHuge(EmuTask t, Vma vma, Folio f, PtePage page)
    {
        var m = t.Machine;
        await page.Ptl.AcquireWrite(t);
        long first = page[0];
        if (page.HugeHead != f.Frame || Pte.Kind(first) is not (PteKind.Present or PteKind.ProtNone))
        {
            page.Ptl.Release(t, LockMode.Write);
            m.Folios.Unlock(t, f.Frame);
            return false;
        }
        m.Sanitizer.CheckMigrationEntryInstall(t, vma, f.Addr, f.Frame);
        HugeMemory.ChangeHugePmdLocked(vma, page, p => Pte.Migration(f.Frame, Pte.IsWritable(p)));
        m.Folios.AddMigrationEntry(f.Frame);
        m.Events.Record(t, EventKind.PteSet, vma.Id, f.Addr, page[0]);
        await t.Delay(m.Cost.PteUpdateNs);
        page.Ptl.Release(t, LockMode.Write);
        f.Unmapped = true;
        return true;
    }

    /// <summary>
    /// (4) to (6) for a THP: allocate a 2 MiB block on the destination and copy the folio in one step (time by 2 MiB and
    /// distance); under pmd_lock remove_migration_pmd maps the new THP with one PMD — or, if the PMD was split meanwhile
    /// (a partial munmap or mprotect: 512 PTE migration entries), each entry still there maps its page of the copy as a
    /// 4 KiB page; unlock the source (waking every waiter, and splitting it if its PMD was split); free the source's block
    /// and what of the copy nobody maps. No free block on the destination: the entries go back to the source.
    /// </summary>
    private static async ValueTask<bool> MoveHuge(EmuTask t, Vma vma, Folio f, int dstNode)
    {
        var m = t.Machine;
        var pt = vma.Mm.PageTable;
        long addr = f.Addr, src = f.Frame;
        const int n = NumaNode.HugeFrames;
        await t.Preempt(PreemptSite.MigrateBeforeCopy);
        await t.DelayExact(m.Cost.PcpRefillNs); // an order-9 block from the destination node's zone
        long dst = await m.FramePort.AllocHuge(t, dstNode);
        bool copied = dst >= 0;
        if (copied)
        {
            m.Frames.InFlight += n;
            await t.Delay(m.Cost.PageBandwidthNs(m.Spec.HugeSize, m.Distance(m.NodeOfFrame(src), dstNode)));
        }
        if (f.Phases != null) f.Phases[3] = t.Clock;
        var now = pt.Lookup(addr);
        int remapped = 0;
        bool pmdMapped = false;
        if (now != null)
        {
            await now.Ptl.AcquireWrite(t);
            if (now.HugeHead == src && Pte.Kind(now[0]) == PteKind.Migration)
            {
                // remove_migration_pmd: one PMD for the whole new folio.
                if (copied)
                {
                    for (int i = 0; i < n; i++) pt.Set(now, i, Pte.Present(dst + i, Pte.IsWritable(now[i])));
                    now.HugeHead = dst;
                    m.Folios.MarkLarge(dst);
                }
                else
                {
                    for (int i = 0; i < n; i++) pt.Set(now, i, Pte.Present(src + i, Pte.IsWritable(now[i])));
                }
                m.Folios.RemoveMigrationEntry(src);
                remapped = n;
                pmdMapped = true;
            }
            else if (!now.IsHuge)
            {
                // The PMD was split while unmapped: 512 PTE migration entries, some perhaps zapped since.
                for (int i = 0; i < n; i++)
                {
                    long cur = now[i];
                    if (Pte.Kind(cur) != PteKind.Migration || Pte.Frame(cur) != src) continue;
                    pt.Set(now, i, Pte.Present((copied ? dst : src) + i, Pte.IsWritable(cur)));
                    m.Folios.RemoveMigrationEntry(src);
                    remapped++;
                }
            }
            if (remapped > 0)
            {
                m.Events.Record(t, EventKind.PteSet, vma.Id, addr, now[0]);
                await t.Delay(m.Cost.PteUpdateNs * (pmdMapped ? 1 : remapped));
            }
            now.Ptl.Release(t, LockMode.Write);
        }
        if (f.Phases != null) f.Phases[4] = t.Clock;
        bool srcWasSplit = m.Folios.SplitPending(src);
        m.Folios.Unlock(t, src); // wakes every waiter; a split PMD splits the folio now
        if (f.Phases != null)
        {
            f.Phases[5] = t.Clock;
            m.Observer!.OnMigrate(t, vma.Id, addr, src, dstNode, f.Phases, copied);
        }
        if (copied)
        {
            m.Frames.InFlight -= n;
            m.Frames.Anon += remapped;
            if (pmdMapped)
                m.Folios.MigrateLastCpupid(src, dst);
            else if (remapped == 0)
                m.FreeHugeFolio(dst); // the copy, never mapped
            else
            {
                // The copy's pages whose entries were zapped meanwhile go back one by one.
                for (int i = 0; i < n; i++)
                {
                    long e = now![i];
                    if (!(Pte.Kind(e) is PteKind.Present or PteKind.ProtNone && Pte.Frame(e) == dst + i))
                        m.FreeFrame(dst + i);
                }
            }
            // The source is unmapped now: free it.
            m.Frames.Anon -= n;
            if (srcWasSplit)
                for (int i = 0; i < n; i++) m.FreeFrame(src + i);
            else
                m.FreeHugeFolio(src);
        }
        else if (remapped < n)
        {
            // Back on the source, but munmap zapped some entries meanwhile: free those pages.
            for (int i = 0; i < n; i++)
            {
                long e = now?[i] ?? Pte.None;
                bool mapped = Pte.Kind(e) is PteKind.Present or PteKind.ProtNone && Pte.Frame(e) == src + i;
                if (!mapped)
                {
                    m.Frames.Anon--;
                    if (remapped == 0 && !srcWasSplit)
                        continue;
                    m.FreeFrame(src + i);
                }
            }
            if (remapped == 0 && !srcWasSplit)
                m.FreeHugeFolio(src);
        }
        m.Events.Record(t, EventKind.MigrateEnd, vma.Id, addr, copied ? 1 : 0);
        if (!copied)
            return Fail(t, vma, f);
        m.VmStat.pgmigrate_success += n;
        m.VmStat.thp_migration_success++;
        return true;
    }

    private static bool Fail(EmuTask t, Vma vma, Folio f)
    {
        t.Machine.VmStat.pgmigrate_fail += f.Pages;
        if (f.Huge) t.Machine.VmStat.thp_migration_fail++;
        t.Machine.Events.Record(t, EventKind.MigrateEnd, vma.Id, f.Addr, -1);
        return false;
    }

    private static async ValueTask<long> AllocOnNode(EmuTask t, int node)
    {
        var m = t.Machine;
        if (node == t.Node)
            return await t.Pcp.Alloc(m, t);
        await t.DelayExact(m.Cost.PcpRefillNs); // another node's free list: see PerCpuPages.Alloc
        var one = new long[1];
        if (await m.FramePort.AllocBulk(t, node, one, 1) == 0)
            return -1;
        m.Frames.InFlight++;
        return one[0];
    }
}
