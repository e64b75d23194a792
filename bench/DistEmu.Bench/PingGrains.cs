using Orleans;

namespace DistEmu.Bench.Ping;

// Not in DistEmu.Abstractions, so the silo's GrainCallCounter does not count these calls.

/// <summary>The target of the ping benchmark: returns its argument plus one.</summary>
public interface IPingGrain : IGrainWithIntegerKey
{
    Task<int> Ping(int x);
}

public sealed class PingGrain : Grain, IPingGrain
{
    public Task<int> Ping(int x) => Task.FromResult(x + 1);
}

/// <summary>A caller: awaits <c>calls</c> pings to its own target grain (same integer key), one at a time.</summary>
public interface IPingCallerGrain : IGrainWithIntegerKey
{
    Task<int> Run(int calls);
}

public sealed class PingCallerGrain : Grain, IPingCallerGrain
{
    public async Task<int> Run(int calls)
    {
        var target = GrainFactory.GetGrain<IPingGrain>(this.GetPrimaryKeyLong());
        int x = 0;
        for (int i = 0; i < calls; i++)
            x = await target.Ping(x);
        return x;
    }
}
