using DistEmu.Abstractions;
using DistEmu.Grains.Placement;

namespace DistEmu.Grains;

/// <summary>
/// An emulated node's page migrator: the queue of pages moving to its node (migrate_pages for move_pages, and the
/// place NUMA-balancing promotion would queue to). It lives on its node's silo and hands each batch to the VMA grain
/// that owns the pages' entries and folios, where the kernel core's migrate_pages runs. Reentrant: a batch that waits
/// (for a folio lock, or for the skew bound) must not hold back the others in host time, or the time keeper would wait
/// for a CPU whose request only sits in this queue.
/// </summary>
[NumaPlacement]
[Orleans.Concurrency.Reentrant]
public sealed class PageMigratorGrain : Grain, IPageMigratorGrain
{
    public Task<ClockReply> Migrate(Caller caller, int mmId, int vmaNode, int vmaId, long[] addrs, long[] frames, int[] mmCpus)
    {
        string run = GrainKeys.RunOf(this.GetPrimaryKeyString());
        int node = GrainKeys.NodeOf(this.GetPrimaryKeyString());
        return GrainFactory.GetGrain<IVmaGrain>(GrainKeys.Vma(run, mmId, vmaNode, vmaId)).Migrate(caller, addrs, frames, node, mmCpus);
    }
}
