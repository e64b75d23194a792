using System.Runtime.CompilerServices;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>The sim engine owns its thread: every continuation runs in its event order, whatever context called it.</summary>
public class SimEngineTests
{
    /// <summary>A context that only queues what is posted to it (a UI or test runner that is busy).</summary>
    private sealed class QueueingContext : SynchronizationContext
    {
        public int Posted;
        public override void Post(SendOrPostCallback d, object? state) => Posted++;
    }

    /// <summary>Two emulated ns steps in a method whose ValueTask is backed by a pooled IValueTaskSource.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask Steps(EmuTask t)
    {
        await t.Delay(100);
        await t.Delay(100);
    }

    [Fact]
    public void A_callers_synchronization_context_never_receives_the_engines_continuations()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var finished = new List<int>();
        for (int cpu = 0; cpu < 4; cpu++)
        {
            int id = cpu;
            h.Spawn(h.NewTask(cpu, null), cpu * 50, async t =>
            {
                for (int i = 0; i < 10; i++) await Steps(t);
                finished.Add(id);
            });
        }
        var context = new QueueingContext();
        var before = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(context);
        try
        {
            h.Run();
            Assert.Same(context, SynchronizationContext.Current); // given back to the caller
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(before);
        }
        Assert.True(context.Posted == 0, $"{context.Posted} continuation(s) went to the caller's context instead of the event queue");
        Assert.Equal([0, 1, 2, 3], finished); // each task ends 2 µs after it started: in start order
    }
}
