using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// The folio lock (PG_locked and its wait queue: folio_lock, folio_trylock, folio_unlock, folio_wait_locked), rule by
/// rule. Times are emulated ns; a woken waiter runs LockHandoffNs after the unlock.
/// </summary>
public class FolioRuleTests
{
    private const long Frame = 4242;
    private static readonly long H = CostModel.Default.LockHandoffNs;

    private static SimHarness Machine() => new(TestMachines.Spec(FaultPolicy.Merged));

    [Fact]
    public void Folio_trylock_fails_while_locked_and_the_table_forgets_an_unlocked_folio_nobody_waits_on()
    {
        var h = Machine();
        var a = h.NewKthread(0, "a");
        var b = h.NewKthread(1, "b");
        h.Spawn(a, 0, async t =>
        {
            Assert.True(t.Machine.Folios.TryLock(t, Frame));
            Assert.Equal(a, t.Machine.Folios.Find(Frame)!.LockedBy);
            await t.Delay(1_000);
            t.Machine.Folios.Unlock(t, Frame);
            Assert.Equal(0, t.Machine.Folios.Count); // sparse: an idle folio costs nothing
        });
        h.Spawn(b, 500, t =>
        {
            Assert.False(t.Machine.Folios.TryLock(t, Frame), "folio_trylock succeeded on a folio another task holds");
            return default;
        });
        h.Run();
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Folio_unlock_wakes_every_waiter_and_hands_the_lock_to_the_first_that_wants_it_in_FIFO_order()
    {
        var h = Machine();
        var got = new Dictionary<string, long>();
        var order = new List<string>();
        h.Spawn(h.NewKthread(0, "holder"), 0, async t =>
        {
            Assert.True(t.Machine.Folios.TryLock(t, Frame));
            await t.Delay(10_000);
            t.Machine.Folios.Unlock(t, Frame);
        });
        void Locker(string name, long at) => h.Spawn(h.NewKthread(1, name), at, async t =>
        {
            await t.Machine.Folios.Lock(t, Frame);
            got[name] = t.Clock;
            order.Add(name);
            await t.Delay(1_000);
            t.Machine.Folios.Unlock(t, Frame);
        });
        Locker("l1", 1_000);
        h.Spawn(h.NewKthread(0, "waiter"), 2_000, async t =>
        {
            await t.Machine.Folios.WaitUnlocked(t, Frame); // folio_wait_locked: woken, but takes no lock
            got["waiter"] = t.Clock;
            order.Add("waiter");
        });
        Locker("l2", 3_000);
        h.Run();
        TestMachines.AssertClean(h);
        Assert.Equal(["l1", "waiter", "l2"], order);
        Assert.Equal(10_000 + H, got["l1"]);
        Assert.Equal(10_000 + H, got["waiter"]); // woken by the same unlock as l1
        Assert.Equal(11_000 + H + H, got["l2"]); // still queued behind l1, handed over at l1's unlock
        Assert.Equal(0, h.Machine.Folios.Count);
    }

    [Fact]
    public void Folio_wait_on_an_unlocked_folio_does_not_sleep()
    {
        var h = Machine();
        bool slept = true;
        h.Spawn(h.NewKthread(0, "t"), 0, t =>
        {
            slept = t.Machine.Folios.WaitUnlocked(t, Frame).Slept;
            return default;
        });
        h.Run();
        Assert.False(slept, "folio_wait_locked slept on a folio nobody holds");
    }

    [Fact]
    public void Folio_unlock_by_a_task_that_does_not_hold_it_is_S6_and_leaves_the_holder_holding_it()
    {
        var h = Machine();
        var holder = h.NewKthread(0, "holder");
        h.Spawn(holder, 0, async t =>
        {
            Assert.True(t.Machine.Folios.TryLock(t, Frame));
            await t.Delay(2_000);
            Assert.Equal(holder, t.Machine.Folios.Find(Frame)!.LockedBy);
            t.Machine.Folios.Unlock(t, Frame);
        });
        h.Spawn(h.NewKthread(1, "other"), 1_000, t =>
        {
            t.Machine.Folios.Unlock(t, Frame);
            return default;
        });
        h.Run();
        var v = Assert.Single(h.Violations);
        Assert.Equal("S6", v.Invariant);
        Assert.Contains($"folio_unlock of frame {Frame} by", v.Message);
    }
}
