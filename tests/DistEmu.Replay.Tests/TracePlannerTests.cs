// The trace planner turns perf records into the emulator's ops: an MMAP2 into an mmap of the page-aligned range (file
// mappings numbered by name), a fault into a write if the mapping is writable and a read otherwise (perf does not
// record the kind) unless a survey of the trace shows the page faulting again in the same mapping epoch, which makes
// the first fault a read (the zero page or a read-only page-cache page, written later via do_wp_page), the time between a thread's records into think time, and faults just past the heap or below the
// stack into the brk / stack growth the trace does not show. Each rule on a few hand-written records.
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Workloads;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public sealed class TracePlannerTests
{
    private const ulong P = 4096;
    private const PerfProtection Rw = PerfProtection.Read | PerfProtection.Write;
    private const PerfProtection Rx = PerfProtection.Read | PerfProtection.Exec;
    private long _line;

    private PerfRecord Mmap(int tid, long timeNs, ulong start, ulong length, PerfProtection prot, PerfMappingKind kind, string name, ulong offset = 0) =>
        new(new PerfMmap(++_line, tid, tid, timeNs, start, length, offset, prot, kind, name));

    private PerfRecord Fault(int tid, long timeNs, ulong address) => new(new PerfPageFault(++_line, tid, timeNs, address));

    private PerfRecord Fork(int parentTid, int childPid, int childTid) => new(new PerfTaskEvent(++_line, PerfTaskEventKind.Fork, parentTid, parentTid, 0, childPid, childTid));

    private PerfRecord Exec(int tid) => new(new PerfTaskEvent(++_line, PerfTaskEventKind.Exec, tid, tid, 0));

    private static List<PlannedOp> Plan(TracePlanner planner, params PerfRecord[] records)
    {
        var ops = new List<PlannedOp>();
        foreach (var r in records) planner.Plan(r, ops);
        return ops;
    }

    private static string Show(IEnumerable<PlannedOp> ops) => string.Join("; ", ops.Select(o => $"tid {o.Tid} {o.Op}"));

    [Fact]
    public void A_fault_is_a_write_in_a_writable_mapping_a_read_in_a_read_only_one_and_nothing_when_unmapped_or_PROT_NONE()
    {
        var planner = new TracePlanner((int)P, asFastAsPossible: true);
        var ops = Plan(planner,
            Mmap(1, 0, 0x10000, 4 * P, Rw, PerfMappingKind.Anon, "//anon"),
            Mmap(1, 0, 0x20000, 4 * P, PerfProtection.Read, PerfMappingKind.Anon, "//anon"),
            Mmap(1, 0, 0x30000, 4 * P, PerfProtection.None, PerfMappingKind.Anon, "//anon"),
            Fault(1, 0, 0x10010),
            Fault(1, 0, 0x20010),
            Fault(1, 0, 0x30010),
            Fault(1, 0, 0x90000));
        var accesses = ops.Where(o => o.Op.Kind is OpKind.Read or OpKind.Write).Select(o => o.Op).ToList();
        Assert.True(accesses.SequenceEqual([Op.Write(0x10010), Op.Read(0x20010)]), "planned: " + Show(ops));
        Assert.Equal((1, 1, 1, 1), (planner.WriteAccesses, planner.ReadAccesses, planner.ProtNone, planner.Unmapped));
    }

    [Fact]
    public void An_mmap_covers_whole_pages_and_a_file_keeps_one_id_per_name_and_its_aligned_offset()
    {
        var planner = new TracePlanner((int)P, asFastAsPossible: true);
        var ops = Plan(planner,
            Mmap(1, 0, 0x10100, 0x1000, Rx, PerfMappingKind.File, "/usr/lib/libc.so", offset: 0x2100),
            Mmap(1, 0, 0x40000, 0x2000, Rx, PerfMappingKind.File, "/usr/lib/libm.so"),
            Mmap(1, 0, 0x50000, 0x1000, Rx, PerfMappingKind.File, "/usr/lib/libc.so", offset: 0x5000),
            Mmap(1, 0, 0x60000, 0, Rw, PerfMappingKind.Anon, "//anon"));
        Assert.True(ops.Count == 3, "planned: " + Show(ops));
        Assert.Equal((OpKind.Mmap, 0x10000L, 2 * (long)P, 0), (ops[0].Op.Kind, ops[0].Op.Addr, ops[0].Op.Length, ops[0].Op.FileId));
        Assert.Equal(0x2000L, ops[0].PageOffset);
        Assert.Equal(1, ops[1].Op.FileId);
        Assert.Equal(0, ops[2].Op.FileId); // libc again: the same file
        Assert.Equal(["/usr/lib/libc.so", "/usr/lib/libm.so"], planner.FileNames);
        Assert.Equal(1, planner.EmptyMappings);
    }

    [Fact]
    public void Time_between_a_threads_records_becomes_think_time_scaled_per_thread()
    {
        var planner = new TracePlanner((int)P, timeScale: 2.0);
        var ops = Plan(planner,
            Mmap(1, 1_000, 0x10000, 16 * P, Rw, PerfMappingKind.Anon, "//anon"),
            Fault(2, 1_500, 0x10000),      // thread 2's first record: no think time
            Fault(1, 4_000, 0x11000),      // thread 1: 3 µs after its mmap → 6 µs at scale 2
            Fault(2, 1_700, 0x12000));     // thread 2: 200 ns after its first → 400 ns
        var planned = ops.Select(o => (o.Tid, o.Op.Kind, o.Op.Ns)).ToList();
        Assert.True(planned.SequenceEqual([
            (1, OpKind.Mmap, 0L), (2, OpKind.Write, 0L), (1, OpKind.Compute, 6_000L), (1, OpKind.Write, 0L), (2, OpKind.Compute, 400L), (2, OpKind.Write, 0L)]),
            "planned: " + Show(ops));

        var fast = new TracePlanner((int)P, asFastAsPossible: true);
        var none = Plan(fast, Mmap(1, 1_000, 0x10000, 16 * P, Rw, PerfMappingKind.Anon, "//anon"), Fault(1, 9_000, 0x10000));
        Assert.DoesNotContain(none, o => o.Op.Kind == OpKind.Compute);
    }

    [Fact]
    public void A_fault_below_the_stack_within_RLIMIT_STACK_grows_it_and_one_beyond_is_unmapped()
    {
        var planner = new TracePlanner((int)P, asFastAsPossible: true);
        const ulong top = 0x7fff_0000_0000, low = top - 0x21000;
        var ops = Plan(planner,
            Mmap(1, 0, low, 0x21000, Rw, PerfMappingKind.Stack, "[stack]"),
            Fault(1, 0, low - 3 * P + 8),
            Fault(1, 0, top - TracePlanner.MaxStackSize - P));
        Assert.True(ops.Count == 3, "planned: " + Show(ops));
        Assert.Equal(Op.MapAnon((long)(low - 3 * P), 3 * (long)P, VmFlags.Read | VmFlags.Write | VmFlags.NoHugePage), ops[1].Op);
        Assert.Equal(Op.Write((long)(low - 3 * P + 8)), ops[2].Op);
        var grown = Assert.Single(planner.Inferred);
        Assert.Equal(("stack", low - 3 * P, low), (grown.Kind, grown.Start, grown.End));
        Assert.Equal(1, planner.Unmapped);
    }

    [Fact]
    public void A_fault_just_above_the_executables_data_grows_the_heap_and_one_a_gigabyte_beyond_does_not()
    {
        var planner = new TracePlanner((int)P, asFastAsPossible: true);
        const ulong text = 0x55_0000_0000, data = text + 0x10000, dataEnd = data + 0x2000;
        var ops = Plan(planner,
            Mmap(1, 0, text, 0x10000, Rx, PerfMappingKind.File, "/usr/bin/prog"),
            Mmap(1, 0, data, 0x2000, Rw, PerfMappingKind.File, "/usr/bin/prog", offset: 0x10000),
            Fault(1, 0, dataEnd + 5 * P + 1),
            Fault(1, 0, dataEnd + 5 * P + TracePlanner.MaxHeapStep + P));
        Assert.True(ops.Count == 4, "planned: " + Show(ops));
        Assert.Equal(Op.MapAnon((long)dataEnd, 6 * (long)P, VmFlags.Read | VmFlags.Write | VmFlags.NoHugePage), ops[2].Op);
        Assert.Equal(Op.Write((long)(dataEnd + 5 * P + 1)), ops[3].Op);
        var heap = Assert.Single(planner.Inferred);
        Assert.Equal(("heap", dataEnd, dataEnd + 6 * P), (heap.Kind, heap.Start, heap.End));
        Assert.Equal(1, planner.Unmapped);
    }

    [Fact]
    public void The_first_fault_of_a_page_that_faults_again_in_its_epoch_is_a_read_and_the_second_the_write()
    {
        PerfRecord[] trace =
        [
            Mmap(1, 0, 0x10000, 4 * P, Rw, PerfMappingKind.Anon, "//anon"),
            Mmap(1, 0, 0x20000, 2 * P, Rw, PerfMappingKind.File, "/usr/bin/prog", offset: 0x3000),
            Fault(1, 0, 0x10010),                 // faults again below: read (zero page), then ...
            Fault(2, 0, 0x11000),                 // faults once: write
            Fault(2, 0, 0x20008),                 // private file page faulting again: read (page cache, read-only)
            Fault(1, 0, 0x10ff0),                 // ... the write (do_wp_page), by another offset on the same page
            Fault(1, 0, 0x20010),                 // the COW write
            Fault(1, 0, 0x12000),                 // faults once in this epoch ...
            Mmap(1, 0, 0x12000, P, Rw, PerfMappingKind.Anon, "//anon"),
            Fault(1, 0, 0x12000),                 // ... and once in the next (a new mapping over it): both writes
            Fault(1, 0, 0x13000),                 // the old mapping's uncut page, twice in its epoch: read, write
            Fault(2, 0, 0x13008),
        ];
        var survey = new RepeatedPages();
        Plan(new TracePlanner((int)P, asFastAsPossible: true) { Survey = survey }, trace);
        survey.Seal();
        Assert.Equal(3, survey.Repeated);

        var planner = new TracePlanner((int)P, asFastAsPossible: true) { Kinds = survey };
        var ops = Plan(planner, trace);
        var accesses = ops.Where(o => o.Op.Kind is OpKind.Read or OpKind.Write).Select(o => o.Op).ToList();
        Op[] expected =
        [
            Op.Read(0x10010), Op.Write(0x11000), Op.Read(0x20008), Op.Write(0x10ff0), Op.Write(0x20010),
            Op.Write(0x12000), Op.Write(0x12000), Op.Read(0x13000), Op.Write(0x13008),
        ];
        Assert.True(accesses.SequenceEqual(expected), "planned: " + Show(ops));
        Assert.Equal((6L, 3L), (planner.WriteAccesses, planner.ReadAccesses));
        Assert.Equal(3, survey.ReadsTaken);

        // Without the survey every fault in a writable mapping is a write (the rule before the inference).
        var blind = new TracePlanner((int)P, asFastAsPossible: true);
        Plan(blind, trace);
        Assert.Equal((9L, 0L), (blind.WriteAccesses, blind.ReadAccesses));
    }

    [Fact]
    public void A_survey_past_its_capacity_leaves_new_pages_untracked_and_planned_by_the_mappings_rule()
    {
        PerfRecord[] trace =
        [
            Mmap(1, 0, 0x10000, 4 * P, Rw, PerfMappingKind.Anon, "//anon"),
            Fault(1, 0, 0x10000),
            Fault(1, 0, 0x11000),                 // beyond capacity 1: untracked, both its faults are writes
            Fault(1, 0, 0x11000),
            Fault(1, 0, 0x10000),                 // tracked: its first fault was the read
        ];
        var survey = new RepeatedPages(capacity: 1);
        Plan(new TracePlanner((int)P, asFastAsPossible: true) { Survey = survey }, trace);
        survey.Seal();
        Assert.Equal((1L, 2L), (survey.Repeated, survey.Untracked));
        var ops = Plan(new TracePlanner((int)P, asFastAsPossible: true) { Kinds = survey }, trace);
        var accesses = ops.Where(o => o.Op.Kind is OpKind.Read or OpKind.Write).Select(o => o.Op).ToList();
        Assert.True(accesses.SequenceEqual([Op.Read(0x10000), Op.Write(0x11000), Op.Write(0x11000), Op.Write(0x10000)]), "planned: " + Show(ops));
        Assert.Throws<InvalidOperationException>(() => survey.Observe(0x10, 1));
    }

    [Fact]
    public void The_survey_finds_exactly_the_repeated_page_epochs_past_many_table_growths()
    {
        // 20,000 pages over two epochs (the survey's table starts at 1,024 slots): every third page faults twice in
        // epoch 1, every fifth once in epoch 1 and once in epoch 2 (not a repeat: a new mapping came in between).
        var survey = new RepeatedPages();
        for (ulong page = 0x7f00_0000; page < 0x7f00_0000 + 20_000; page++)
        {
            survey.Observe(page, 1);
            if (page % 3 == 0)
            {
                survey.Observe(page, 1);
            }

            if (page % 5 == 0)
            {
                survey.Observe(page, 2);
            }
        }

        survey.Seal();
        long expected = Enumerable.Range(0, 20_000).Count(i => (0x7f00_0000UL + (ulong)i) % 3 == 0);
        Assert.Equal(expected, survey.Repeated);
        for (ulong page = 0x7f00_0000; page < 0x7f00_0000 + 20_000; page++)
        {
            Assert.Equal(page % 3 == 0, survey.TakeFirst(page, 1));
            Assert.False(survey.TakeFirst(page, 1)); // only the first fault is the read
            Assert.False(survey.TakeFirst(page, 2));
        }

        Assert.Equal(0, survey.Untracked);
    }

    [Fact]
    public void A_forked_process_starts_with_its_parents_mappings_and_an_exec_with_none()
    {
        // kernel_clone without CLONE_VM (dup_mmap), then exec_mmap: the child's fault on the parent's mapping is an
        // access, after its exec the same address is unmapped; a thread (same pid) shares the parent's mappings.
        var planner = new TracePlanner((int)P, asFastAsPossible: true) { Processes = true };
        var ops = Plan(planner,
            Mmap(1, 0, 0x10000, 4 * P, Rw, PerfMappingKind.Anon, "//anon"),
            Fork(1, childPid: 2, childTid: 2),
            Fork(1, childPid: 1, childTid: 3),
            Fault(2, 0, 0x10010),
            Fault(3, 0, 0x11010),
            Exec(2),
            Fault(2, 0, 0x12010),
            Mmap(2, 0, 0x10000, 4 * P, Rw, PerfMappingKind.Anon, "//anon"),
            Fault(2, 0, 0x13010),
            Fault(1, 0, 0x12010));
        Assert.True(ops.Select(o => (o.Tid, o.Op.Kind)).SequenceEqual(
            [(1, OpKind.Mmap), (1, OpKind.Fork), (2, OpKind.Write), (3, OpKind.Write), (2, OpKind.Exec), (2, OpKind.Mmap), (2, OpKind.Write), (1, OpKind.Write)]), "planned: " + Show(ops));
        Assert.Equal(2, ops.Single(o => o.Op.Kind == OpKind.Fork).Child);
        Assert.True(ops.Where(o => o.Op.Kind is OpKind.Mmap or OpKind.Fork or OpKind.Exec).All(o => o.IsFence));
        Assert.Equal((1L, 1L, 1L), (planner.ForkOps, planner.ExecOps, planner.Unmapped));
    }

    [Fact]
    public void Without_processes_task_events_plan_nothing_and_every_tid_shares_one_address_space()
    {
        var planner = new TracePlanner((int)P, asFastAsPossible: true);
        var ops = Plan(planner,
            Mmap(1, 0, 0x10000, 4 * P, Rw, PerfMappingKind.Anon, "//anon"),
            Fork(1, childPid: 2, childTid: 2),
            Exec(2),
            Fault(2, 0, 0x10010));
        Assert.True(ops.Select(o => o.Op.Kind).SequenceEqual([OpKind.Mmap, OpKind.Write]), "planned: " + Show(ops));
        Assert.Equal((0L, 0L), (planner.ForkOps, planner.ExecOps));
    }

    [Fact]
    public void After_a_fork_a_page_faulting_again_is_a_copy_on_write_break_not_a_read_then_write()
    {
        // The parent writes page 0 before the fork and again after it (do_wp_page on the write-protected entry): both
        // faults are writes, since fork started a new mapping epoch on both sides.
        var survey = new RepeatedPages(1024);
        var records = new[]
        {
            Mmap(1, 0, 0x10000, 4 * P, Rw, PerfMappingKind.Anon, "//anon"),
            Fault(1, 0, 0x10000),
            Fork(1, childPid: 2, childTid: 2),
            Fault(1, 0, 0x10000),
            Fault(2, 0, 0x10000),
        };
        Plan(new TracePlanner((int)P, asFastAsPossible: true) { Processes = true, Survey = survey }, records);
        survey.Seal();
        var ops = Plan(new TracePlanner((int)P, asFastAsPossible: true) { Processes = true, Kinds = survey }, records);
        Assert.True(ops.Where(o => o.Op.Kind is OpKind.Read or OpKind.Write).All(o => o.Op.Kind == OpKind.Write), "planned: " + Show(ops));
    }
}
