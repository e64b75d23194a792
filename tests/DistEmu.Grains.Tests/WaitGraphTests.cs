using System.Diagnostics;
using DistEmu.Abstractions;

namespace DistEmu.Grains.Tests;

/// <summary>
/// The machine-wide wait-for graph: a cycle across grains is reported with its locks and CPUs once it stands; waits
/// that are woken, or that form no cycle, are never reported. The negative cases are shown by a control: a real cycle
/// between two other CPUs added afterwards. The graph keeps one candidate at a time, so the cycle it reports once
/// confirmed is the control only if the waits before it formed none (no fixed wait that could be too short on a busy
/// host).
/// </summary>
[Collection("one silo")]
public sealed class WaitGraphTests(OneSilo cluster)
{
    private IWaitGraphGrain Graph() => cluster.Grains.GetGrain<IWaitGraphGrain>($"run-wg-{Guid.NewGuid():N}");

    /// <summary>Polls Deadlock() until it reports (the signal the machine grain polls for), or fails after a minute.</summary>
    private static async Task<string> Reported(IWaitGraphGrain g, string what)
    {
        var bound = Stopwatch.StartNew(); // only keeps a broken graph from hanging the suite
        while (true)
        {
            if (await g.Deadlock() is { } text) return text;
            Assert.True(bound.Elapsed < TimeSpan.FromMinutes(1), $"the wait-for graph never reported {what}");
            await Task.Delay(20); // the poll's cadence, not a bound: the result does not depend on it
        }
    }

    /// <summary>The control: cpu8 and cpu9 each wait for what the other holds.</summary>
    private static async Task<string> ControlCycleReported(IWaitGraphGrain g)
    {
        await g.Wait(8, 88, "vma_lock vma8", [9]);
        await g.Wait(9, 99, "mmap_lock mm8", [8]);
        return await Reported(g, "the control cycle cpu8 ↔ cpu9");
    }

    [Fact]
    public async Task A_cycle_through_two_grains_is_reported_with_its_locks_once_it_has_stood_for_the_confirmation_window()
    {
        var g = Graph();
        var since = Stopwatch.StartNew();
        await g.Wait(1, 11, "vma_lock vma3", [2]);
        await g.Wait(2, 22, "mmap_lock mm0", [1]);
        var early = await g.Deadlock();
        if (since.Elapsed < WaitGraphGrain.Confirm) // a wake-up may still be in flight: not yet a deadlock
            Assert.True(early is null, $"a wait-for cycle was reported before it had stood {WaitGraphGrain.Confirm.TotalMilliseconds} ms: {early}");
        var text = await Reported(g, "cpu1 ↔ cpu2");
        Assert.True(since.Elapsed >= WaitGraphGrain.Confirm, $"reported after {since.Elapsed.TotalMilliseconds} ms: {text}");
        Assert.Contains("cpu1 waits for vma_lock vma3 held by cpu2", text);
        Assert.Contains("cpu2 waits for mmap_lock mm0 held by cpu1", text);
    }

    [Fact]
    public async Task A_wake_that_overtook_its_wait_keeps_the_wait_out_of_the_graph()
    {
        var g = Graph();
        await g.Woke(1, 11); // the wake overtook its wait
        await g.Wait(1, 11, "vma_lock vma3", [2]);
        await g.Wait(2, 22, "mmap_lock mm0", [1]);
        var text = await ControlCycleReported(g);
        Assert.DoesNotContain("cpu1", text);
        Assert.Contains("cpu8 waits for vma_lock vma8 held by cpu9", text);
    }

    [Fact]
    public async Task A_wake_after_the_cycle_formed_breaks_it()
    {
        var g = Graph();
        await g.Wait(1, 11, "vma_lock vma3", [2]);
        await g.Wait(2, 22, "mmap_lock mm0", [1]);
        await g.Woke(2, 22);
        var text = await ControlCycleReported(g);
        Assert.DoesNotContain("cpu1", text);
        Assert.Contains("cpu9 waits for mmap_lock mm8 held by cpu8", text);
    }

    /// <summary>
    /// Wait and Woke are one-way, so a wake can arrive after a second cycle formed while the first was the candidate;
    /// the CPUs of the second are asleep and send nothing more, so the graph must look again when its candidate breaks.
    /// </summary>
    [Fact]
    public async Task A_cycle_that_formed_while_another_was_the_candidate_is_reported_once_that_one_breaks()
    {
        var g = Graph();
        await g.Wait(1, 11, "vma_lock vma3", [2]);
        await g.Wait(2, 22, "mmap_lock mm0", [1]);
        await g.Wait(8, 88, "vma_lock vma8", [9]);
        await g.Wait(9, 99, "mmap_lock mm8", [8]);
        await g.Woke(2, 22);
        var text = await Reported(g, "the cycle cpu8 ↔ cpu9 that formed behind cpu1 ↔ cpu2");
        Assert.DoesNotContain("cpu1", text);
        Assert.Contains("cpu8 waits for vma_lock vma8 held by cpu9", text);
    }

    [Fact]
    public async Task Waits_without_a_cycle_are_no_deadlock()
    {
        var g = Graph();
        await g.Wait(1, 11, "folio_lock frame 7", [3]);
        await g.Wait(2, 22, "vma_lock vma3", [1]);
        var text = await ControlCycleReported(g);
        Assert.DoesNotContain("cpu1", text);
        Assert.DoesNotContain("cpu2", text);
    }
}
