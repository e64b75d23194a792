using System.Runtime.CompilerServices;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// The fault path's async method builder: suspended frames hand results and exceptions to their callers, a reused
/// frame is never read through a stale ValueTask, and the execution context still flows where it is not suppressed
/// (orleans' request context and Activity ride on it).
/// </summary>
public class EmuAsyncMethodBuilderTests
{
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<long> Inner(EmuTask t, long x)
    {
        await t.Delay(10);
        return x * 2;
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<long> Middle(EmuTask t, long x)
    {
        long a = await Inner(t, x);
        await t.Delay(5);
        return a + await Inner(t, x + 1);
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder))]
    private static async ValueTask Outer(EmuTask t, long x, List<(int Task, long Value, long Clock)> log)
    {
        long v = await Middle(t, x);
        log.Add((t.Id, v, t.Clock));
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<long> ThrowsAfterYield(EmuTask t)
    {
        await t.Delay(10);
        throw new InvalidOperationException("raised in a suspended frame");
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<long> ThrowsAtOnce(bool doThrow)
    {
        if (doThrow) throw new ArgumentException("raised before any suspension");
        await Task.CompletedTask;
        return 1;
    }

    [Fact]
    public void Nested_frames_suspended_by_the_engine_return_their_results_in_emulated_time_order()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var log = new List<(int Task, long Value, long Clock)>();
        for (int cpu = 0; cpu < 4; cpu++)
            h.Spawn(h.NewTask(cpu, null), cpu, async t =>
            {
                for (int i = 0; i < 50; i++) await Outer(t, i, log);
            });
        h.Run();

        Assert.Equal(200, log.Count);
        // Each call takes 25 emulated ns; the four tasks start 1 ns apart and interleave at every step.
        for (int k = 0; k < log.Count; k++)
        {
            var (task, value, clock) = log[k];
            int i = k / 4;
            Assert.Equal(i * 2 + (i + 1) * 2, value);
            Assert.Equal(task + 25L * (i + 1), clock);
        }
        Assert.True(h.Engine.EventsRun > 200, "the frames did suspend (else this test proves nothing)");
    }

    [Fact]
    public void An_exception_after_a_suspension_reaches_the_caller_and_the_frame_is_reused_cleanly()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var caught = new List<string>();
        long after = 0;
        for (int cpu = 0; cpu < 2; cpu++)
            h.Spawn(h.NewTask(cpu, null), cpu, async t =>
            {
                for (int i = 0; i < 3; i++)
                {
                    try
                    {
                        await ThrowsAfterYield(t);
                    }
                    catch (InvalidOperationException e)
                    {
                        caught.Add(e.Message);
                    }
                }
                long v = await Middle(t, 1);
                after += v;
            });
        h.Run();

        Assert.Equal(6, caught.Count);
        Assert.All(caught, m => Assert.Equal("raised in a suspended frame", m));
        Assert.Equal(2 * (2 + 4), after);
    }

    [Fact]
    public async Task An_exception_before_any_suspension_faults_the_returned_task()
    {
        var vt = ThrowsAtOnce(true);
        Assert.True(vt.IsFaulted);
        var e = await Assert.ThrowsAsync<ArgumentException>(async () => await vt);
        Assert.Equal("raised before any suspension", e.Message);
        Assert.Equal(1, await ThrowsAtOnce(false));
    }

    [Fact]
    public void A_frames_result_cannot_be_read_twice_through_its_ValueTask()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        Exception? second = null;
        var a = h.NewTask(0, null);
        h.Spawn(h.NewTask(1, null), 0, async t => await t.Delay(1)); // makes the first task's step yield
        h.Spawn(a, 0, async t =>
        {
            var vt = Inner(t, 3);
            Assert.False(vt.IsCompleted);
            Assert.Equal(6, await vt);
            try
            {
                await vt;
            }
            catch (InvalidOperationException e)
            {
                second = e;
            }
        });
        h.Run();
        Assert.NotNull(second);
        Assert.Contains("awaited twice", second!.Message);
    }

    private static readonly AsyncLocal<string?> RequestContext = new();

    /// <summary>An awaitable resumed later by whoever holds it, from whatever execution context that caller has.</summary>
    private sealed class Later : ICriticalNotifyCompletion
    {
        public Action? Continuation;
        public Later GetAwaiter() => this;
        public bool IsCompleted => false;
        public void GetResult()
        {
        }
        public void OnCompleted(Action continuation) => Continuation = continuation;
        public void UnsafeOnCompleted(Action continuation) => Continuation = continuation;
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<string?> ReadContextAfter(Later later)
    {
        await later;
        return RequestContext.Value;
    }

    [Fact]
    public async Task The_execution_context_flows_to_a_resumed_frame_unless_the_flow_is_suppressed()
    {
        var later = new Later();
        RequestContext.Value = "caller's request";
        var vt = ReadContextAfter(later);
        RequestContext.Value = "someone else's";
        later.Continuation!();
        Assert.True(vt.IsCompleted);
        Assert.Equal("caller's request", await vt);

        // The sim engine suppresses the flow: frames then resume in the resumer's context, at no cost.
        var later2 = new Later();
        RequestContext.Value = "caller's request";
        ValueTask<string?> vt2;
        using (ExecutionContext.SuppressFlow())
            vt2 = ReadContextAfter(later2);
        RequestContext.Value = "resumer's";
        later2.Continuation!();
        Assert.True(vt2.IsCompleted);
        Assert.Equal("resumer's", await vt2);
    }
}
