using Orleans;

namespace DistEmu.Abstractions;

/// <summary>
/// The page migrator of an emulated node (key: "run/nodeK/migrator"): the queue of pages moving to node K. move_pages
/// and migrate_pages hand it the pages they collected; it runs migrate_pages on each page's VMA, one batch at a time.
/// </summary>
public interface IPageMigratorGrain : IGrainWithStringKey
{
    /// <summary>Migrate <paramref name="addrs"/>/<paramref name="frames"/> of VMA (mm, node, id) to this node; returns the caller's clock after and the pages moved.</summary>
    Task<ClockReply> Migrate(Caller caller, int mmId, int vmaNode, int vmaId, long[] addrs, long[] frames, int[] mmCpus);
}
