using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// RwSemaphore's rules that RwsemWakeOrderTests does not pin: writers are served in arrival order, a trylock fails while
/// anyone holds in a conflicting mode or anyone waits, and a PTL — a queued spinlock, not an rwsem — hands itself to its
/// first waiter directly, so a writer arriving between the release and the hand-over cannot take it (the rwsem's
/// optimistic spinning would). Times are emulated ns.
/// </summary>
public class RwSemaphoreRuleTests
{
    private static readonly long H = CostModel.Default.LockHandoffNs;

    private sealed class Rig(LockClass @class)
    {
        public SimHarness Sim { get; } = new(TestMachines.Spec(FaultPolicy.Merged));
        public RwSemaphore Sem { get; private set; } = null!;
        public Dictionary<string, long> LockedAt { get; } = new();
        public List<string> Order { get; } = new();

        public Rig Build()
        {
            Sem = new RwSemaphore(Sim.Machine, @class, "test");
            return this;
        }

        public void Locker(string name, LockMode mode, long at, long hold) => Sim.Spawn(Sim.NewKthread(0, name), at, async t =>
        {
            if (mode == LockMode.Write) await Sem.AcquireWrite(t);
            else await Sem.AcquireRead(t);
            LockedAt[name] = t.Clock;
            Order.Add(name);
            await t.Delay(hold);
            Sem.Release(t, mode);
        });

        public void Probe(long at, Action<EmuTask> probe) => Sim.Spawn(Sim.NewKthread(1, "probe@" + at), at, t =>
        {
            probe(t);
            return ValueTask.CompletedTask;
        });

        public void Run()
        {
            Sim.Run();
            TestMachines.AssertClean(Sim);
            Assert.False(Sem.IsLocked, $"{Sem} still held after every task ended");
            Assert.False(Sem.HasWaiters);
        }
    }

    [Fact]
    public void Queued_writers_get_the_lock_in_arrival_order()
    {
        var r = new Rig(LockClass.MmapLock).Build();
        r.Locker("w0", LockMode.Write, 0, 10_000);
        r.Locker("w3", LockMode.Write, 3_000, 1_000);
        r.Locker("w1", LockMode.Write, 1_000, 1_000);
        r.Locker("w2", LockMode.Write, 2_000, 1_000);
        r.Run();
        Assert.Equal(["w0", "w1", "w2", "w3"], r.Order);
        Assert.Equal(10_000 + H, r.LockedAt["w1"]);
        Assert.Equal(11_000 + 2 * H, r.LockedAt["w2"]);
        Assert.Equal(12_000 + 3 * H, r.LockedAt["w3"]);
    }

    [Fact]
    public void Trylocks_fail_on_a_conflicting_holder_and_read_trylock_fails_once_a_writer_waits()
    {
        var r = new Rig(LockClass.MmapLock).Build();
        var tries = new Dictionary<string, bool>();
        r.Locker("r0", LockMode.Read, 0, 10_000);
        r.Probe(1_000, t =>
        {
            tries["write while read-held"] = r.Sem.TryWrite(t);
            tries["read while read-held"] = r.Sem.TryRead(t);
            if (tries["read while read-held"]) r.Sem.Release(t, LockMode.Read);
        });
        r.Locker("w1", LockMode.Write, 2_000, 1_000);
        r.Probe(3_000, t => tries["read while a writer waits"] = r.Sem.TryRead(t));
        r.Probe(10_000 + H + 500, t => tries["write while w1 holds"] = r.Sem.TryWrite(t));
        r.Probe(20_000, t =>
        {
            tries["write when free"] = r.Sem.TryWrite(t);
            if (tries["write when free"]) r.Sem.Release(t, LockMode.Write);
        });
        r.Run();
        Assert.Equal(new Dictionary<string, bool>
        {
            ["write while read-held"] = false,
            ["read while read-held"] = true,
            ["read while a writer waits"] = false,
            ["write while w1 holds"] = false,
            ["write when free"] = true,
        }, tries);
    }

    [Fact]
    public void A_PTL_is_handed_to_its_first_waiter_and_a_later_arrival_queues_behind_it()
    {
        var r = new Rig(LockClass.Ptl).Build();
        r.Locker("p0", LockMode.Write, 0, 10_000);
        r.Locker("p1", LockMode.Write, 1_000, 1_000);
        // Arrives after p0's release but before p1 would run: an rwsem writer would steal here; a PTL waiter already owns it.
        r.Locker("p2", LockMode.Write, 10_000 + H / 2, 1_000);
        r.Run();
        Assert.Equal(["p0", "p1", "p2"], r.Order);
        Assert.Equal(10_000 + H, r.LockedAt["p1"]);
        Assert.Equal(11_000 + 2 * H, r.LockedAt["p2"]);
        Assert.Equal(0, r.Sem.Steals);
    }

    [Fact]
    public void A_contended_acquisition_counts_a_contention_and_its_wait_in_lock_stat()
    {
        var r = new Rig(LockClass.MmapLock).Build();
        r.Locker("w0", LockMode.Write, 0, 10_000);
        r.Locker("r1", LockMode.Read, 4_000, 1_000);
        r.Run();
        var read = r.Sim.Machine.LockStats[LockClass.MmapLock, LockMode.Read];
        var write = r.Sim.Machine.LockStats[LockClass.MmapLock, LockMode.Write];
        Assert.Equal((1L, 1L), (read.Acquisitions, read.Contentions));
        Assert.Equal((1L, 0L), (write.Acquisitions, write.Contentions));
        Assert.Equal(10_000 + H - 4_000, read.Wait.Max);
    }
}
