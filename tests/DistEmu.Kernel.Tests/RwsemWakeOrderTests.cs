using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// PROTOCOL.md §2 "rwsem wake order", rule by rule, on a bare rw_semaphore (kernel/locking/rwsem.c: rwsem_mark_wake,
/// rwsem_downgrade_wake, rwsem_optimistic_spin, RWSEM_FLAG_HANDOFF). Times are emulated ns; a woken waiter gets the
/// lock LockHandoffNs after the release.
/// </summary>
public class RwsemWakeOrderTests
{
    private static readonly long H = CostModel.Default.LockHandoffNs;

    private sealed class Rig
    {
        public SimHarness Sim { get; } = new(TestMachines.Spec(FaultPolicy.Merged));
        public RwSemaphore Sem { get; }
        /// <summary>Task name → emulated time it got the lock.</summary>
        public Dictionary<string, long> LockedAt { get; } = new();
        public List<string> Order { get; } = new();

        public Rig() => Sem = new RwSemaphore(Sim.Machine, LockClass.MmapLock, "test");

        /// <summary>A task that arrives at <paramref name="at"/>, takes the lock in <paramref name="mode"/>, holds it <paramref name="hold"/> ns.</summary>
        public void Locker(string name, LockMode mode, long at, long hold, Func<EmuTask, ValueTask>? whileHeld = null)
        {
            var t = Sim.NewKthread(0, name);
            Sim.Spawn(t, at, async t =>
            {
                if (mode == LockMode.Write) await Sem.AcquireWrite(t);
                else await Sem.AcquireRead(t);
                LockedAt[name] = t.Clock;
                Order.Add(name);
                if (whileHeld != null) await whileHeld(t);
                await t.Delay(hold);
                Sem.Release(t, mode);
            });
        }

        public void Run()
        {
            Sim.Run();
            TestMachines.AssertClean(Sim);
            Assert.False(Sem.IsLocked);
            Assert.False(Sem.HasWaiters);
        }
    }

    [Fact]
    public void RwsemMarkWake_wakes_every_queued_reader_past_waiting_writers()
    {
        var r = new Rig();
        r.Locker("w0", LockMode.Write, 0, 10_000);
        r.Locker("r1", LockMode.Read, 1_000, 5_000);
        r.Locker("w1", LockMode.Write, 2_000, 1_000);
        r.Locker("r2", LockMode.Read, 3_000, 5_000);
        r.Locker("w2", LockMode.Write, 4_000, 1_000);
        r.Locker("r3", LockMode.Read, 5_000, 5_000);
        r.Run();
        // w0's release (10 µs) starts a reader phase: r1, r2 and r3 all get in; w1 and w2 keep their places.
        Assert.Equal(10_000 + H, r.LockedAt["r1"]);
        Assert.Equal(10_000 + H, r.LockedAt["r2"]);
        Assert.Equal(10_000 + H, r.LockedAt["r3"]);
        Assert.Equal(15_000 + 2 * H, r.LockedAt["w1"]);
        Assert.Equal(16_000 + 3 * H, r.LockedAt["w2"]);
        Assert.Equal(["w0", "r1", "r2", "r3", "w1", "w2"], r.Order);
    }

    [Fact]
    public void RwsemMarkWake_caps_a_wakeup_at_256_readers()
    {
        var r = new Rig();
        r.Locker("w0", LockMode.Write, 0, 10_000);
        for (int i = 0; i < 300; i++)
            r.Locker($"r{i}", LockMode.Read, 1_000 + i, 1_000);
        r.Run();
        long first = 10_000 + H;
        // MAX_READERS_WAKEUP: the first 256 queued readers at once, the other 44 when the last of those leaves.
        Assert.Equal(RwSemaphore.MaxReadersWakeup, r.LockedAt.Count(kv => kv.Key.StartsWith('r') && kv.Value == first));
        Assert.All(Enumerable.Range(0, 256), i => Assert.Equal(first, r.LockedAt[$"r{i}"]));
        Assert.All(Enumerable.Range(256, 44), i => Assert.Equal(first + 1_000 + H, r.LockedAt[$"r{i}"]));
    }

    [Fact]
    public void Downgrade_wakes_queued_readers_like_release()
    {
        var r = new Rig();
        var w0 = r.Sim.NewKthread(0, "w0");
        long downgradedAt = -1;
        r.Sim.Spawn(w0, 0, async t =>
        {
            await r.Sem.AcquireWrite(t);
            await t.Delay(10_000);
            downgradedAt = t.Clock;
            r.Sem.Downgrade(t);
            await t.Delay(20_000);
            r.Sem.Release(t, LockMode.Read);
        });
        r.Locker("r1", LockMode.Read, 1_000, 5_000);
        r.Locker("w1", LockMode.Write, 2_000, 1_000);
        r.Locker("r2", LockMode.Read, 3_000, 5_000);
        r.Run();
        // rwsem_downgrade_wake: both queued readers join the downgraded holder; the writer between them waits for all.
        Assert.Equal(downgradedAt + H, r.LockedAt["r1"]);
        Assert.Equal(downgradedAt + H, r.LockedAt["r2"]);
        Assert.Equal(30_000 + H, r.LockedAt["w1"]);
    }

    [Fact]
    public void Downgrade_never_wakes_a_writer_first_in_the_queue()
    {
        var r = new Rig();
        var w0 = r.Sim.NewKthread(0, "w0");
        r.Sim.Spawn(w0, 0, async t =>
        {
            await r.Sem.AcquireWrite(t);
            await t.Delay(10_000);
            r.Sem.Downgrade(t);
            await t.Delay(20_000);
            r.Sem.Release(t, LockMode.Read);
        });
        r.Locker("w1", LockMode.Write, 1_000, 1_000);
        r.Locker("r1", LockMode.Read, 2_000, 1_000);
        r.Run();
        Assert.Equal(30_000 + H, r.LockedAt["w1"]);
        Assert.Equal(31_000 + 2 * H, r.LockedAt["r1"]);
    }

    [Fact]
    public void RwsemOptimisticSpin_steals_from_a_woken_writer_on_its_way_but_readers_still_queue()
    {
        var r = new Rig();
        r.Locker("w0", LockMode.Write, 0, 10_000);
        r.Locker("w1", LockMode.Write, 1_000, 1_000);
        // Both arrive after w0's release (10 µs) and before w1 has run (10 µs + H).
        r.Locker("r1", LockMode.Read, 10_000 + H / 4, 1_000);
        r.Locker("w2", LockMode.Write, 10_000 + H / 2, 3_000);
        r.Run();
        Assert.Equal(10_000 + H / 2, r.LockedAt["w2"]);
        Assert.Equal(["w0", "w2", "w1", "r1"], r.Order);
        // w1 slept again, first in the queue, and got the lock at w2's release.
        Assert.Equal(10_000 + H / 2 + 3_000 + H, r.LockedAt["w1"]);
        Assert.Equal(1, r.Sem.Steals);
        Assert.Equal(0, r.Sem.Handoffs);
    }

    [Fact]
    public void A_waiter_past_RWSEM_WAIT_TIMEOUT_gets_the_lock_handed_off()
    {
        var r = new Rig();
        long longHold = RwSemaphore.RwsemWaitTimeoutNs + 1_000_000;
        r.Locker("w0", LockMode.Write, 0, 10_000);
        r.Locker("w1", LockMode.Write, 1_000, 1_000);
        // Before the timeout a spinner steals from the woken w1 and holds the lock 5 ms…
        r.Locker("w2", LockMode.Write, 10_000 + H / 2, longHold);
        long w2Release = 10_000 + H / 2 + longHold;
        // …so at its release w1 has waited past RWSEM_WAIT_TIMEOUT: the lock is handed off to it, and the next
        // spinner, arriving in the same window, queues instead of stealing.
        r.Locker("w3", LockMode.Write, w2Release + H / 2, 1_000);
        r.Run();
        Assert.Equal(["w0", "w2", "w1", "w3"], r.Order);
        Assert.Equal(w2Release + H, r.LockedAt["w1"]);
        Assert.Equal(w2Release + H + 1_000 + H, r.LockedAt["w3"]);
        Assert.Equal(1, r.Sem.Steals);
        Assert.Equal(1, r.Sem.Handoffs);
    }

    [Fact]
    public void Trylock_fails_while_a_woken_writer_is_on_its_way()
    {
        var r = new Rig();
        r.Locker("w0", LockMode.Write, 0, 10_000);
        r.Locker("w1", LockMode.Write, 1_000, 1_000);
        bool? readTry = null, writeTry = null;
        var p = r.Sim.NewKthread(0, "probe");
        r.Sim.Spawn(p, 10_000 + H / 2, t =>
        {
            readTry = r.Sem.TryRead(t);
            writeTry = r.Sem.TryWrite(t);
            return ValueTask.CompletedTask;
        });
        r.Run();
        Assert.False(readTry);
        Assert.False(writeTry);
    }
    /// <summary>
    /// EarliestWake, which the sim engine's run-ahead takes as a sleeper's bound: probed every 250 ns through a reader
    /// phase, a steal from a woken writer and a hand-off, it is never later than the time any task then asleep in the
    /// queue got the lock.
    /// </summary>
    [Theory]
    [InlineData("phase")]
    [InlineData("steal")]
    [InlineData("handoff")]
    public void EarliestWake_is_never_later_than_a_sleeper_gets_the_lock(string scenario)
    {
        var r = new Rig();
        var arrivals = new List<(string Name, LockMode Mode, long At, long Hold)>();
        switch (scenario)
        {
            case "phase":
                arrivals.AddRange([("w0", LockMode.Write, 0, 10_000), ("r1", LockMode.Read, 1_000, 5_000), ("w1", LockMode.Write, 2_000, 1_000),
                    ("r2", LockMode.Read, 3_000, 7_000), ("w2", LockMode.Write, 4_000, 1_000), ("r3", LockMode.Read, 5_000, 5_000)]);
                break;
            case "steal":
                arrivals.AddRange([("w0", LockMode.Write, 0, 10_000), ("w1", LockMode.Write, 1_000, 1_000),
                    ("r1", LockMode.Read, 10_000 + H / 4, 1_000), ("w2", LockMode.Write, 10_000 + H / 2, 3_000)]);
                break;
            case "handoff":
                long longHold = RwSemaphore.RwsemWaitTimeoutNs + 10_000;
                arrivals.AddRange([("w0", LockMode.Write, 0, 10_000), ("w1", LockMode.Write, 1_000, 1_000),
                    ("w2", LockMode.Write, 10_000 + H / 2, longHold), ("w3", LockMode.Write, 10_000 + H / 2 + longHold + H / 2, 1_000)]);
                break;
        }
        foreach (var (name, mode, at, hold) in arrivals)
            r.Locker(name, mode, at, hold);
        var probes = new List<(long At, long Bound)>();
        long end = arrivals.Max(a => a.At + a.Hold) * 2 + 10 * H;
        var p = r.Sim.NewKthread(0, "probe");
        r.Sim.Spawn(p, 0, async t =>
        {
            while (t.Clock < end)
            {
                probes.Add((t.Clock, r.Sem.EarliestWake()));
                await t.Delay(250);
            }
        });
        r.Run();
        int checkedProbes = 0;
        foreach (var (name, _, at, _) in arrivals)
        {
            long got = r.LockedAt[name];
            foreach (var (probeAt, bound) in probes.Where(q => q.At > at && q.At < got && q.Bound != long.MinValue))
            {
                Assert.True(bound <= got, $"{scenario}: at {probeAt} EarliestWake said {bound}, but {name}, asleep since {at}, got the lock at {got}");
                checkedProbes++;
            }
        }
        Assert.True(checkedProbes > 0);
    }
}
