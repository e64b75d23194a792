// Models the ordering the trace implies between threads: a mapping must exist before another thread
// touches it, and must not be replaced while another thread still has earlier accesses to do. Mmap ops
// are fences in trace order; accesses between two fences run concurrently. Waiting happens in emulated
// time (a task sleeps until the op it depends on completes, and wakes at that task's clock).
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Replay;

/// <summary>
/// One ordering domain (one process: its mm, or the mms an exec gives it). Rules, with Seq the op's trace order: an
/// op with Seq s waits until every fence (mmap, fork, exec; and the fork that made the process) with Seq &lt; s has
/// completed; a fence with Seq s also waits until every other task of the domain has completed all its ops with
/// Seq &lt; s. The pending op with the smallest Seq can always run, so the domain never deadlocks (a fork waits only
/// for its own domain, which is earlier in trace order than its child's).
/// </summary>
internal sealed class ReplayGate
{
    private const long Done = long.MaxValue;

    private readonly ReplayFeed _feed;
    private readonly int[] _tasks;
    private readonly SortedSet<long> _pendingFences = new();
    private readonly List<(int Task, long Seq, bool IsFence, TaskBarrier Barrier)> _waiters = new();
    private readonly Dictionary<int, TaskBarrier> _barriers = new();

    public ReplayGate(ReplayFeed feed, int[] tasks)
    {
        _feed = feed;
        _tasks = tasks;
    }

    public long Waits { get; private set; }

    /// <summary>A fence (mmap, fork, exec) of this domain, or the fork that makes its process, was read.</summary>
    public void FenceDispatched(long seq) => _pendingFences.Add(seq);

    /// <summary>Waits (in emulated time) until <paramref name="op"/> of <paramref name="task"/> may run.</summary>
    public async ValueTask WaitTurn(EmuTask t, int task, PlannedOp op)
    {
        bool isFence = op.IsFence;
        if (CanRun(task, op.Seq, isFence))
        {
            return;
        }

        if (!_barriers.TryGetValue(task, out var barrier))
        {
            barrier = new TaskBarrier(2);
            _barriers.Add(task, barrier);
        }

        Waits++;
        _waiters.Add((task, op.Seq, isFence, barrier));
        await barrier.Arrive(t);
    }

    public void FenceCompleted(long seq) => _pendingFences.Remove(seq);

    /// <summary>Something changed (an op completed, a task moved on or finished): wake every waiter whose turn it is, at <paramref name="waker"/>'s clock.</summary>
    public void Notify(EmuTask waker)
    {
        for (int i = 0; i < _waiters.Count;)
        {
            var w = _waiters[i];
            if (CanRun(w.Task, w.Seq, w.IsFence))
            {
                _waiters.RemoveAt(i);
                w.Barrier.Arrive(waker); // the second party: releases the sleeper at the waker's clock, never sleeps
            }
            else
            {
                i++;
            }
        }
    }

    private bool CanRun(int task, long seq, bool isFence)
    {
        // Every op waits for the earlier fences; a fence also for every other task's earlier ops.
        if (_pendingFences.Count > 0 && _pendingFences.Min < seq)
        {
            return false;
        }

        if (!isFence)
        {
            return true;
        }

        foreach (int other in _tasks)
        {
            if (other != task && _feed.CurrentSeq(other) < seq)
            {
                return false;
            }
        }

        return true;
    }

    internal static long Finished => Done;
}
