using System.Collections.Immutable;
using System.Net;
using DistEmu.Grains.Placement;
using Orleans.Runtime.Placement;

namespace DistEmu.Grains.Tests;

/// <summary>
/// A silo that has just joined is active in membership before its grain manifest reaches the other silos, and until
/// then it is not a compatible silo there. NUMA placement must not decide in that gap, or the machine, the mm and the
/// wait graph land on a different silo than node 0's grains (a silo loss then takes the mm's counters with it).
/// </summary>
public sealed class PlacementManifestTests
{
    private static readonly SiloAddress First = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11111), 1);
    private static readonly SiloAddress Second = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11112), 2);

    [Fact]
    public async Task A_grain_of_no_node_waits_for_every_active_silos_manifest_and_goes_with_node_0()
    {
        // Placed on the second silo, which knows both silos are active but has not yet got the first one's manifest.
        var context = new Context(Second, [Second]);
        var director = new NumaPlacementDirector(null!, new Membership(First, Second));
        var placing = director.OnAddActivation(NumaPlacement.Singleton, Target("run-1/mm0"), context);
        await Task.Delay(300);
        Assert.False(placing.IsCompleted, "placed while the first silo's manifest was missing");
        context.Compatible = [Second, First];
        Assert.Equal(First, await placing.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_silo_that_never_becomes_compatible_delays_placement_once_per_membership_version()
    {
        var context = new Context(Second, [Second]);
        var director = new NumaPlacementDirector(null!, new Membership(First, Second)) { ManifestWait = TimeSpan.FromSeconds(1) };
        var first = director.OnAddActivation(NumaPlacement.Singleton, Target("run-1/mm0"), context);
        await Task.Delay(50);
        Assert.False(first.IsCompleted, "did not wait for the missing manifest");
        Assert.Equal(Second, await first.WaitAsync(TimeSpan.FromSeconds(10))); // gave up: the only compatible silo
        var second = director.OnAddActivation(NumaPlacement.Singleton, Target("run-1"), context);
        Assert.True(second.IsCompleted, "waited again for the same membership version");
        Assert.Equal(Second, await second);
    }

    private static PlacementTarget Target(string key) =>
        new(GrainId.Create("test", key), new Dictionary<string, object>(), GrainInterfaceType.Create("test"), 0);

    private sealed class Context(SiloAddress local, SiloAddress[] compatible) : IPlacementContext
    {
        public volatile SiloAddress[] Compatible = compatible;
        public SiloAddress LocalSilo => local;
        public SiloStatus LocalSiloStatus => SiloStatus.Active;
        public SiloAddress[] GetCompatibleSilos(PlacementTarget target) => Compatible;
        public IReadOnlyDictionary<ushort, SiloAddress[]> GetCompatibleSilosWithVersions(PlacementTarget target) =>
            new Dictionary<ushort, SiloAddress[]> { [0] = Compatible };
    }

    private sealed class Membership(params SiloAddress[] active) : IClusterMembershipService
    {
        public ClusterMembershipSnapshot CurrentSnapshot { get; } = new(
            active.ToImmutableDictionary(s => s, s => new ClusterMember(s, SiloStatus.Active, s.ToString())), new MembershipVersion(7));
        public IAsyncEnumerable<ClusterMembershipSnapshot> MembershipUpdates => throw new InvalidOperationException("not used by placement");
        public ValueTask Refresh(MembershipVersion minimumVersion = default, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
        public Task<bool> TryKill(SiloAddress siloAddress) => Task.FromResult(false);
    }
}
