using System.Globalization;
using System.Text.Json;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Telemetry.Tests;

/// <summary>
/// The Perfetto (Chrome trace-event) file parsed back, and the waits of known scenarios: every migration wait the sim
/// engine measured is a span of the fault, under every policy, at the emulated times it measured.
/// </summary>
public sealed class PerfettoAndWaitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("distemu-perfetto-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static long Ns(JsonElement micros) => (long)decimal.Round(decimal.Parse(micros.GetRawText(), CultureInfo.InvariantCulture) * 1000);

    [Fact]
    public void The_perfetto_file_has_a_named_thread_per_cpu_ns_exact_times_and_events_that_nest()
    {
        var path = Path.Combine(_dir, "run.perfetto.json");
        var file = TraceFiles.Open(path, DateTimeOffset.UnixEpoch, new TraceFileOptions { Run = new RunIdentity { Machine = "small", Policy = "vma-unlocked", Engine = "sim", Seed = 1 } });
        var recorder = new SpanRecorder(file, new TracingOptions { Policy = "vma-unlocked" });
        SimRun.Run(new SimRunOptions { Machine = Scenarios.Small(FaultPolicy.VmaUnlocked), Workload = "migrate-munmap", OpsPerTask = 300, Observer = recorder });
        file.Complete();
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var events = doc.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
        var process = Assert.Single(events, e => e.GetProperty("name").GetString() == "process_name");
        Assert.Equal("distemu: small, vma-unlocked, sim engine, seed 1", process.GetProperty("args").GetProperty("name").GetString());
        var threads = events.Where(e => e.GetProperty("name").GetString() == "thread_name")
            .ToDictionary(e => e.GetProperty("tid").GetInt64(), e => e.GetProperty("args").GetProperty("name").GetString()!);
        var complete = events.Where(e => e.GetProperty("ph").GetString() == "X").ToList();
        Assert.True(complete.Count > 1000);
        foreach (var e in complete)
        {
            var args = e.GetProperty("args");
            Assert.Equal(args.GetProperty("emu.start_ns").GetInt64(), Ns(e.GetProperty("ts")));
            Assert.Equal(args.GetProperty("emu.duration_ns").GetInt64(), Ns(e.GetProperty("dur")));
            string thread = threads[e.GetProperty("tid").GetInt64()];
            if (args.TryGetProperty("emu.cpu", out var cpu) && cpu.GetInt64() >= 0)
                Assert.StartsWith($"cpu{cpu.GetInt64()}", thread, StringComparison.Ordinal);
        }
        Assert.Contains(complete, e => Ns(e.GetProperty("dur")) % 1000 != 0); // sub-µs precision is there
        // Perfetto shows a thread's complete events only if they nest perfectly.
        foreach (var track in complete.GroupBy(e => e.GetProperty("tid").GetInt64()))
        {
            var open = new Stack<long>();
            foreach (var e in track.OrderBy(e => Ns(e.GetProperty("ts"))).ThenByDescending(e => Ns(e.GetProperty("dur"))))
            {
                long start = Ns(e.GetProperty("ts")), end = start + Ns(e.GetProperty("dur"));
                while (open.Count > 0 && open.Peek() <= start) open.Pop();
                Assert.True(open.Count == 0 || end <= open.Peek(), $"{e} overlaps the span open on {threads[track.Key]} until {(open.Count > 0 ? open.Peek() : -1)} ns without nesting");
                open.Push(end);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Every_migration_wait_the_sim_engine_measured_is_a_span_of_its_fault(FaultPolicy policy)
    {
        var sink = new ListSink();
        var recorder = new SpanRecorder(sink, new TracingOptions { Policy = policy.Name() });
        var result = SimRun.Run(new SimRunOptions { Machine = Scenarios.Small(policy), Workload = "migrate-munmap", OpsPerTask = 3000, Observer = recorder });
        var hist = result.Machine.MigrationWait;
        var waits = sink.Traces.SelectMany(t => t.Where(s => s.Name == "migration_entry_wait").Select(s => (Wait: s, Trace: t))).ToList();
        Assert.True(hist.Count > 0, $"{policy.Name()}: migrate-munmap made no fault wait for a migration");
        Assert.Equal(hist.Count, waits.Count);
        Assert.Equal(hist.Total, waits.Sum(w => w.Wait.EmulatedDurationNs));
        Assert.Equal(hist.Max, waits.Max(w => w.Wait.EmulatedDurationNs));
        foreach (var (wait, trace) in waits)
        {
            var root = Assert.Single(trace, s => s.ParentId == 0);
            Assert.Equal("page_fault", root.Name);
            Assert.Equal(root.SpanId, wait.ParentId);
            Assert.InRange(wait.StartNs, root.StartNs, root.EndNs);
            Assert.InRange(wait.EndNs, wait.StartNs, root.EndNs);
        }
    }

    public static TheoryData<FaultPolicy> Policies() => new(FaultPolicies.All);

    [Fact]
    public void The_lkml_faults_migration_wait_ends_when_the_migration_unlocks_the_folio()
    {
        var sink = new ListSink();
        var result = Scenarios.Lkml(FaultPolicy.Merged, sameVma: false, sink);
        var wait = Assert.Single(sink.All, s => s.Name == "migration_entry_wait");
        var unlock = Assert.Single(sink.All, s => s.Name == "unlock");
        Assert.Equal($"cpu-{LkmlCase.FaulterCpu}", wait.Process);
        Assert.Equal(result.Machine.MigrationWait.Total, wait.EmulatedDurationNs);
        // The waiter sleeps on the folio the migration holds for 150 µs, and wakes a lock hand-off after its unlock phase releases it.
        Assert.True(wait.EmulatedDurationNs > LkmlCase.MigrationHoldNs / 2, $"waited {wait.EmulatedDurationNs} ns");
        Assert.Equal(unlock.EndNs + result.Machine.Cost.LockHandoffNs, wait.EndNs);
    }

    [Fact]
    public void A_fault_preempted_after_dropping_its_vma_lock_shows_the_preemption_in_its_trace()
    {
        const long delay = 200_000;
        var sink = new ListSink();
        var recorder = new SpanRecorder(sink, new TracingOptions { Policy = FaultPolicy.VmaUnlocked.Name() });
        SimRun.Run(LkmlCase.Options(FaultPolicy.VmaUnlocked, sameVma: true, faulterDelayAfterUnlock: delay, observer: recorder));
        // The S8 fault: its 200 µs are the preemption between vma_end_read and pte_offset_map_lock, no longer a gap.
        var fault = Assert.Single(sink.Traces, t => t.Any(s => s.Name == "page_fault" && s.ErrorDescription is { } e && e.StartsWith("S8", StringComparison.Ordinal)));
        var root = Assert.Single(fault, s => s.ParentId == 0);
        var preempted = Assert.Single(fault, s => s.Name == "preempted");
        Assert.Equal(delay, preempted.EmulatedDurationNs);
        Assert.Equal(root.SpanId, preempted.ParentId);
        Assert.Contains(preempted.Tags, t => t.Key == "emu.site" && (string)t.Value == "fault lock dropped to pte_offset_map_lock");
        var vmaLock = Assert.Single(fault, s => s.Name == "vma_lock read");
        Assert.True(preempted.StartNs >= vmaLock.EndNs, "the preemption follows the VMA lock's release");
    }
}
