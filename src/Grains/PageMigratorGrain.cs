using DistEmu.Abstractions;
using DistEmu.Grains.Placement;

namespace DistEmu.Grains;

/// <summary>
/// An emulated node's page migrator: the queue of pages moving to its node (migrate_pages for move_pages, and the
/// place NUMA-balancing promotion would queue to). It lives on its node's silo and hands each batch to the VMA grain
/// that owns the pages' entries and folios, where the kernel core's migrate_pages runs. Batches are taken one at a
/// time (not reentrant), as a per-node migration thread would.
/// </summary>
[NumaPlacement]
public sealed class PageMigratorGrain : Grain, IPageMigratorGrain
{
    public Task<ClockReply> Migrate(Caller caller, int mmId, int vmaNode, int vmaId, long[] addrs, long[] frames)
    {
        string run = GrainKeys.RunOf(this.GetPrimaryKeyString());
        int node = GrainKeys.NodeOf(this.GetPrimaryKeyString());
        return GrainFactory.GetGrain<IVmaGrain>(GrainKeys.Vma(run, mmId, vmaNode, vmaId)).Migrate(caller, addrs, frames, node);
    }
}
