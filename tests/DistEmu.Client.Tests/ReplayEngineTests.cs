using System.Text.Json;
using Xunit.Abstractions;

namespace DistEmu.Client.Tests;

/// <summary>`distemu replay FILE --engine orleans`: the trace fed to CPU grains in batches gives the sim engine's faults and mappings.</summary>
public sealed class ReplayEngineTests(ITestOutputHelper output) : InProcessCliTests
{
    [Fact]
    public void Orleans_replay_of_the_sample_agrees_with_sim_on_pgfault_and_the_reconstructed_vmas()
    {
        var sim = Replay("sim");
        var orleans = Replay("orleans");
        output.WriteLine($"sim:     pgfault {sim.Faults}, vmas {sim.Vmas}, lines {sim.Lines}, emulated {sim.EmulatedNs:N0} ns, engine line '{sim.EngineLine}'");
        output.WriteLine($"orleans: pgfault {orleans.Faults}, vmas {orleans.Vmas}, lines {orleans.Lines}, emulated {orleans.EmulatedNs:N0} ns, engine line '{orleans.EngineLine}'");
        Assert.Contains("engine orleans", orleans.EngineLine);
        Assert.Contains("engine sim", sim.EngineLine);
        Assert.Equal(38766, orleans.Lines);
        Assert.Equal(sim.Lines, orleans.Lines);
        Assert.Equal(sim.Faults, orleans.Faults);
        Assert.Equal(sim.Vmas, orleans.Vmas);
        Assert.True(orleans.Faults > 38_000, $"the sample's cold start faults every page it touches; got {orleans.Faults} faults");
    }

    [Fact]
    public void A_forking_trace_replays_its_processes_on_sim_and_orleans_says_on_stderr_it_replays_them_as_one()
    {
        // make -j2 (tests/data): 12 forks of a new process. The sim engine replays each process; the orleans engine, with
        // no fork path, runs every TID in one mm and warns, as --shared-mm does.
        string trace = SampleTrace.Path("make-j2.perf.txt.gz");
        JsonElement Run(string dir, params string[] extra)
        {
            var (code, _, stderr) = Cli(["replay", trace, "--preset", "epyc-2s-nps4", "--as-fast-as-possible", "--out", Path.Combine(_tmp, dir), .. extra]);
            Assert.True(code == 0, stderr);
            bool warned = stderr.Contains("distemu: warning: ", StringComparison.Ordinal) && stderr.Contains("forks 12 process(es)", StringComparison.Ordinal);
            Assert.Equal(extra.Length > 0, warned);
            return JsonDocument.Parse(File.ReadAllText(Path.Combine(_tmp, dir, "replay.json"))).RootElement;
        }

        var sim = Run("sim");
        Assert.Equal(12, sim.GetProperty("ops").GetProperty("fork").GetInt64());
        Assert.Equal(0, sim.GetProperty("unreplayed_process_forks").GetInt64());
        Assert.Equal(8_185, sim.GetProperty("emulated_faults").GetInt64()); // the trace's faults, exactly
        var orleans = Run("orleans", "--engine", "orleans");
        Assert.Equal(12, orleans.GetProperty("unreplayed_process_forks").GetInt64());
        Assert.True(orleans.GetProperty("emulated_faults").GetInt64() < 8_185 * 99 / 100);
        var shared = Run("shared", "--shared-mm");
        Assert.Equal(12, shared.GetProperty("unreplayed_process_forks").GetInt64());
    }

    [Fact]
    public void A_forking_trace_printed_without_task_events_is_replayed_as_one_process_with_a_warning_that_says_why()
    {
        // The same make -j2 trace as perf script prints it without --show-task-events: its MMAP2 lines still name 13
        // pids, but nothing says how the processes came to be.
        string withEvents = SampleTrace.Path("make-j2.perf.txt.gz");
        string plain = Path.Combine(_tmp, "make-j2-no-task-events.txt");
        using (var input = new StreamReader(new System.IO.Compression.GZipStream(File.OpenRead(withEvents), System.IO.Compression.CompressionMode.Decompress)))
        using (var output = new StreamWriter(plain))
            while (input.ReadLine() is { } line)
                if (!line.Contains("PERF_RECORD_FORK", StringComparison.Ordinal) && !line.Contains("PERF_RECORD_EXIT", StringComparison.Ordinal) && !line.Contains("PERF_RECORD_COMM", StringComparison.Ordinal))
                    output.WriteLine(line);
        var outDir = Path.Combine(_tmp, "plain");
        var (code, _, stderr) = Cli("replay", plain, "--preset", "epyc-2s-nps4", "--as-fast-as-possible", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("maps memory in 13 processes but holds no fork", stderr);
        Assert.Contains("--show-task-events", stderr);
        var r = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "replay.json"))).RootElement;
        Assert.Equal(13, r.GetProperty("processes_without_task_events").GetInt32());
        Assert.True(r.GetProperty("emulated_faults").GetInt64() < 8_185 * 99 / 100, "as one process the exec'd programs' faults are missing");
    }

    [Fact]
    public void Orleans_replay_refuses_replicate_with_exit_2_and_no_folder()
    {
        var outDir = Path.Combine(_tmp, "replicate");
        var (code, _, stderr) = Cli("replay", SampleTrace.Path(), "--engine", "orleans", "--replicate", "2", "--out", outDir);
        output.WriteLine(stderr);
        Assert.Equal(2, code);
        Assert.Contains("replicate", stderr);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Orleans_replay_with_shared_mm_runs_every_copy_as_threads_of_one_process()
    {
        // Two copies of the sample's 5 threads as threads of one mm: 10 tasks, the mappings made once, the same pages touched.
        var outDir = Path.Combine(_tmp, "copies");
        var (code, _, stderr) = Cli("replay", SampleTrace.Path(), "--engine", "orleans", "--preset", "epyc-2s-nps4", "--replicate", "2", "--shared-mm", "--as-fast-as-possible", "--out", outDir);
        Assert.True(code == 0, $"replay --replicate 2 --shared-mm exited {code}: {stderr}");
        using var replay = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "replay.json")));
        var r = replay.RootElement;
        output.WriteLine($"tasks {r.GetProperty("tasks")}, mms {r.GetProperty("mms")}, vmas {r.GetProperty("vmas")}, faults {r.GetProperty("emulated_faults")}");
        Assert.Equal(10, r.GetProperty("tasks").GetInt32());
        Assert.Equal(1, r.GetProperty("mms").GetInt32());
        Assert.Equal(38, r.GetProperty("vmas").GetInt64()); // one set of mappings, not two
        long faults = r.GetProperty("emulated_faults").GetInt64();
        // Each page is faulted at least once and at most once per copy. The sim engine, exact, has copies in lockstep both
        // fault (2x); orleans decides in host order, so the trailing copy mostly finds the page mapped (README).
        Assert.InRange(faults, 38_716, 2 * 38_716); // the trace's 38,716 faults, once or twice
        var tidCpu = r.GetProperty("tid_cpu").EnumerateObject().ToList();
        Assert.Equal(10, tidCpu.Count); // "TID" for copy 0, "TID#1" for copy 1
        Assert.Equal(10, tidCpu.Select(e => e.Value.GetInt32()).Distinct().Count()); // one task per CPU
    }

    [Fact]
    public void Both_engines_replay_a_real_multithreaded_trace_to_its_traced_faults_and_no_fault_kinds_undercounts()
    {
        // xz -T2 on Linux 6.18 (tests/data/README.md): 404 pages are read (zero page) before they are written, so perf
        // recorded two faults for each. With the inference both engines reproduce every traced fault; without it
        // (--no-fault-kinds) the second fault of each such page is lost, the undercount the inference closes.
        string trace = SampleTrace.Path("xz-T2.perf.txt.gz");
        long traced = 0;
        using (var text = new StreamReader(new System.IO.Compression.GZipStream(File.OpenRead(trace), System.IO.Compression.CompressionMode.Decompress)))
        {
            while (text.ReadLine() is { } line)
            {
                if (line.Contains(": page-faults:", StringComparison.Ordinal) && !line.TrimStart().StartsWith("0 ", StringComparison.Ordinal)) traced++;
            }
        }

        long Faults(string name, params string[] extra)
        {
            var outDir = Path.Combine(_tmp, name);
            var (code, _, stderr) = Cli(["replay", trace, "--as-fast-as-possible", "--out", outDir, .. extra]);
            Assert.True(code == 0, $"replay {string.Join(' ', extra)} exited {code}: {stderr}");
            using var replay = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "replay.json")));
            return replay.RootElement.GetProperty("emulated_faults").GetInt64();
        }

        long sim = Faults("xz-sim", "--engine", "sim");
        long orleans = Faults("xz-orleans", "--engine", "orleans");
        long blind = Faults("xz-blind", "--engine", "sim", "--no-fault-kinds");
        output.WriteLine($"xz -T2: traced {traced}, sim {sim}, orleans {orleans}, sim --no-fault-kinds {blind}");
        Assert.Equal(7496, traced);
        Assert.Equal(traced, sim);
        Assert.Equal(traced, orleans);
        Assert.True((traced - blind) * 100 > traced, $"without the inference: {blind} of {traced}");
    }

    private (long Faults, long Vmas, long Lines, long EmulatedNs, string EngineLine) Replay(string engine)
    {
        var outDir = Path.Combine(_tmp, engine);
        var (code, stdout, stderr) = Cli("replay", SampleTrace.Path(), "--engine", engine, "--as-fast-as-possible", "--out", outDir);
        Assert.True(code == 0, $"replay --engine {engine} exited {code}: {stderr}");
        using var replay = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "replay.json")));
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var r = replay.RootElement;
        Assert.Equal(r.GetProperty("emulated_faults").GetInt64(), stats.RootElement.GetProperty("faults").GetInt64());
        string engineLine = Lines(stdout).FirstOrDefault(l => l.Contains("engine", StringComparison.Ordinal) && !l.StartsWith("replaying", StringComparison.Ordinal)) ?? "";
        return (r.GetProperty("emulated_faults").GetInt64(), r.GetProperty("vmas").GetInt64(), r.GetProperty("lines_read").GetInt64(), r.GetProperty("emulated_ns").GetInt64(), engineLine);
    }
}
