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

/// <summary>migrate_pages for one anonymous folio (mm/migrate.c: migrate_folio_unmap, move_to_new_folio, remove_migration_ptes).</summary>
public static class MigratePages
{
    /// <summary>
    /// Move the folio of <paramref name="frame"/>, mapped at <paramref name="addr"/> in <paramref name="vma"/>'s mm, to
    /// <paramref name="dstNode"/>. Never takes a VMA lock; reaches the entry by rmap. (1) lock the source folio (trylock
    /// when async). (2) under the PTL replace the entry by a migration entry, then flush the TLBs. (3) copy to a new
    /// frame (time by size and distance). (4) under the PTL replace the migration entry by the new frame — or, if munmap
    /// zapped it meanwhile, drop the copy. (5) unlock the source folio, waking every waiter; free the source.
    /// Returns true on success (pgmigrate_success), false on failure (pgmigrate_fail).
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public static async ValueTask<bool> MigrateFolio(EmuTask t, Vma vma, long addr, long frame, int dstNode, MigrateMode mode)
    {
        var m = t.Machine;
        var mm = vma.Mm;
        var pt = mm.PageTable;
        addr = m.PageAlign(addr);
        m.Events.Record(t, EventKind.MigrateBegin, vma.Id, addr, frame);
        // Phase boundaries for the observer: start, locked, unmapped, copied, remapped, unlocked.
        var phases = m.Observer is null ? null : new long[6];
        if (phases != null) phases[0] = t.Clock;
        await t.Delay(m.Cost.MigrateBaseNs);

        if (mode == MigrateMode.Async)
        {
            // migrate_folio_unmap returns -EAGAIN; migrate_pages_batch retries it a few passes, then counts the
            // folio in nr_failed_pages, i.e. pgmigrate_fail (mm/migrate.c): a lost trylock is a failure there too.
            if (!m.Folios.TryLock(t, frame))
                return Fail(t, vma, addr, frame);
        }
        else
        {
            await m.Folios.Lock(t, frame);
        }

        if (phases != null) phases[1] = t.Clock;
        // (2) try_to_migrate: the rmap walk finds the mapping in the current page table.
        var page = pt.Lookup(addr);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, addr, "try_to_migrate", viaRmap: true);
        if (page is null)
        {
            m.Folios.Unlock(t, frame);
            return Fail(t, vma, addr, frame);
        }
        int i = pt.IndexOf(addr);
        await page.Ptl.AcquireWrite(t);
        long pte = page[i];
        if (Pte.Kind(pte) is not (PteKind.Present or PteKind.ProtNone) || Pte.Frame(pte) != frame || Pte.IsFile(pte))
        {
            page.Ptl.Release(t, LockMode.Write);
            m.Folios.Unlock(t, frame);
            return Fail(t, vma, addr, frame);
        }
        m.Sanitizer.CheckMigrationEntryInstall(t, vma, addr, frame);
        pt.Set(page, i, Pte.Migration(frame, Pte.IsWritable(pte)));
        m.Folios.AddMigrationEntry(frame);
        m.Events.Record(t, EventKind.PteSet, vma.Id, addr, page[i]);
        await t.Delay(m.Cost.PteUpdateNs);
        page.Ptl.Release(t, LockMode.Write);
        await TlbFlush.FlushRange(t, mm, addr, addr + m.Spec.PageSize);
        if (phases != null) phases[2] = t.Clock;
        await t.Preempt(PreemptSite.MigrateBeforeCopy);

        // (3) allocate on the destination node and copy.
        long dst = await AllocOnNode(t, dstNode);
        bool copied = dst >= 0;
        if (copied)
            await t.Delay(m.Cost.PageBandwidthNs(m.Spec.PageSize, m.Distance(m.NodeOfFrame(frame), dstNode)));

        if (phases != null) phases[3] = t.Clock;
        // (4) remove_migration_ptes.
        var now = pt.Lookup(addr);
        bool remapped = false;
        if (now != null)
        {
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

        if (phases != null) phases[4] = t.Clock;
        // (5) unlock the source: wakes every migration_entry_wait sleeper. Then settle the frames.
        m.Folios.Unlock(t, frame);
        if (phases != null)
        {
            phases[5] = t.Clock;
            m.Observer!.OnMigrate(t, vma.Id, addr, frame, dstNode, phases, copied);
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
            {
                m.FreeFrame(dst);
            }
        }
        if (copied || !remapped)
        {
            // The source is unmapped now (moved, or zapped by munmap while we held it): free it.
            m.Frames.Anon--;
            m.FreeFrame(frame);
        }
        m.Events.Record(t, EventKind.MigrateEnd, vma.Id, addr, copied ? 1 : 0);
        if (!copied)
            return Fail(t, vma, addr, frame);
        m.VmStat.pgmigrate_success++;
        return true;
    }

    private static bool Fail(EmuTask t, Vma vma, long addr, long frame)
    {
        t.Machine.VmStat.pgmigrate_fail++;
        t.Machine.Events.Record(t, EventKind.MigrateEnd, vma.Id, addr, -1);
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
