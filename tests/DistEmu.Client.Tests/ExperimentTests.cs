using System.Diagnostics;

namespace DistEmu.Client.Tests;

public sealed class ExperimentTests : InProcessCliTests
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    [Fact]
    public void Experiment_small_matrix_writes_csv_report_and_pngs()
    {
        var outDir = Path.Combine(_tmp, "exp");
        var (code, stdout, stderr) = Cli("experiment", "--policies", "merged,mmap-only", "--presets", "small",
            "--workloads", "page-fault1", "--param", "size_mb=4", "--ops", "300", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("run 1/2: merged small page-fault1 cpus=8", stdout);
        Assert.Contains("run 2/2: mmap-only small page-fault1 cpus=8", stdout);
        Assert.Empty(Directory.GetDirectories(_tmp, "*.tmp-*"));

        var csv = Lines(File.ReadAllText(Path.Combine(outDir, "results.csv")));
        Assert.Equal(3, csv.Length);
        Assert.Equal(string.Join(",", ExperimentReport.Columns), csv[0]);
        Assert.StartsWith("policy,preset,workload,cpus,repeat,faults,host_seconds,faults_per_host_second,faults_per_emulated_second,scaling_efficiency,cross_silo_fraction,fault_latency_p99_ns,mmap_lock_wait_p99_ns,vma_lock_wait_p99_ns,writer_wait_p99_ns,migration_wait_p99_ns,vma_lock_retry,sanitizer_violations", csv[0]);
        Assert.StartsWith("merged,small,page-fault1,8,1,", csv[1]);
        Assert.StartsWith("mmap-only,small,page-fault1,8,1,", csv[2]);
        var cells = csv[1].Split(',');
        Assert.True(long.Parse(cells[5], System.Globalization.CultureInfo.InvariantCulture) > 0, "faults");
        Assert.Equal("", cells[9]);  // no cpus=1 point: no scaling efficiency
        Assert.Equal("", cells[10]); // sim engine: no cross-silo fraction

        var report = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("| merged | small | page-fault1 | 8 |", report);
        // The run table leaves out the columns empty in every row (results.csv keeps them): no scaling efficiency
        // without a cpus=1 point, no silos or cross-silo figures on the sim engine.
        var runsHeader = Lines(report).Single(l => l.StartsWith("| policy | preset |", StringComparison.Ordinal));
        Assert.DoesNotContain("scaling_efficiency", runsHeader);
        Assert.DoesNotContain("cross_silo_fraction", runsHeader);
        Assert.Contains("faults_per_host_second", runsHeader);
        Assert.Contains("Exploration.Default", report);
        foreach (var png in new[] { "faults-per-emulated-second-page-fault1.png", "writer-wait-p99.png", "migration-wait-p99.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(outDir, png));
            Assert.True(bytes.Length > 1000, png);
            Assert.Equal(PngSignature, bytes[..8]);
            Assert.Contains($"]({png})", report);
        }
    }

    [Fact]
    public void Experiment_without_exploration_runs_what_run_runs_and_says_so()
    {
        var outDir = Path.Combine(_tmp, "noexplore");
        var (code, stdout, stderr) = Cli("experiment", "--no-explore", "--policies", "merged", "--workloads", "page-fault1",
            "--param", "size_mb=4", "--ops", "1500", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("(no exploration: run-ahead)", stdout);
        Assert.Contains("--no-explore", File.ReadAllText(Path.Combine(outDir, "report.md")));
        var row = Lines(File.ReadAllText(Path.Combine(outDir, "results.csv")))[1].Split(',');

        // The same point through distemu run (sim, no exploration, seed 1): the same faults and latency tail.
        var runDir = Path.Combine(_tmp, "run");
        (code, _, stderr) = Cli("run", "--engine", "sim", "--policy", "merged", "--workload", "page-fault1", "--param", "size_mb=4",
            "--ops", "1500", "--out", runDir);
        Assert.True(code == 0, stderr);
        using var stats = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "stats.json")));
        Assert.Equal(stats.RootElement.GetProperty("faults").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture), row[5]);
        Assert.Equal(stats.RootElement.GetProperty("fault_latency_ns").GetProperty("p99").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture), row[11]);

        (code, _, stderr) = Cli("experiment", "--no-explore", "--engine", "orleans", "--out", Path.Combine(_tmp, "refused"));
        Assert.Equal(2, code);
        Assert.Contains("--no-explore", stderr);
        Assert.False(Directory.Exists(Path.Combine(_tmp, "refused")));
    }

    [Fact]
    public void Experiment_on_orleans_fills_the_cross_silo_fraction()
    {
        var outDir = Path.Combine(_tmp, "orleans");
        var (code, stdout, stderr) = Cli("experiment", "--engine", "orleans", "--policies", "merged", "--workloads", "page-fault1",
            "--param", "size_mb=4", "--ops", "300", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("orleans engine (--quantum 1000)", stdout);
        var csv = Lines(File.ReadAllText(Path.Combine(outDir, "results.csv")));
        Assert.Equal(2, csv.Length);
        Assert.Equal("0", csv[1].Split(',')[10]); // one silo: no call crosses silos
    }

    [Fact]
    public void Experiment_scaling_efficiency_is_filled_when_a_cpus_1_point_exists()
    {
        var outDir = Path.Combine(_tmp, "scaling");
        var (code, _, stderr) = Cli("experiment", "--policies", "merged", "--workloads", "page-fault1", "--param", "size_mb=4",
            "--cpus", "1,8", "--ops", "300", "--out", outDir);
        Assert.True(code == 0, stderr);
        var csv = Lines(File.ReadAllText(Path.Combine(outDir, "results.csv")));
        Assert.Equal(3, csv.Length);
        Assert.Equal("1", csv[1].Split(',')[9]);
        Assert.True(double.Parse(csv[2].Split(',')[9], System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public void Experiment_policy_comparison_on_migrate_munmap_shows_every_effect_of_PROTOCOL_5_as_held()
    {
        // The sim engine with exploration is deterministic for a seed, so each policy's scenario has one outcome: the
        // effect it is built to show. A verdict of "not held" or "not seen" means the model no longer shows that effect.
        var outDir = Path.Combine(_tmp, "compare");
        // THP off: §5's effects are those of 4 KiB migration entries (do_swap_page), where the policies part ways.
        var (code, stdout, stderr) = Cli("experiment", "--policies", "all", "--workloads", "migrate-munmap", "--param", "thp=off", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("run 7/7:", stdout);
        Assert.Equal(8, Lines(File.ReadAllText(Path.Combine(outDir, "results.csv"))).Length);
        var report = Lines(File.ReadAllText(Path.Combine(outDir, "report.md")));
        string Verdict(string policy) => Assert.Single(report, l => l.StartsWith($"- {policy}:", StringComparison.Ordinal));
        void Held(string pattern, string line) =>
            Assert.True(System.Text.RegularExpressions.Regex.IsMatch(line, pattern), $"expected the effect to hold ({pattern}), the report says:\n{line}");
        Held(@"writer wait p99 [\d,]+ ns vs merged [\d,]+ ns \([\d.]+x\).* a queued writer behind a migration wait stalls faults: held$", Verdict("mmap-only"));
        Held(@"vma_lock_retry = [1-9]\d* > 0 .* retries track migrations: held$", Verdict("vma-bailout"));
        Held(@"writer wait p99 [\d,]+ ns vs mmap-only [\d,]+ ns — below mmap-only's: held$", Verdict("merged"));
        Held(@"S8 \(page-table use-after-free\) [1-9]\d* time\(s\) in 1/1 run\(s\): held$", Verdict("vma-unlocked"));
        Held(@"S6 \(double unlock\) [1-9]\d* time\(s\) in [1-9]\d*/1 run\(s\): held$", Verdict("lock-dropped"));
        Held(@"^- ptl-drop: 0 violation\(s\); .* without its use-after-free: held$", Verdict("ptl-drop"));
        Held(@"^- safe policies \(mmap-only, vma-bailout, merged, ptl-drop\): 0 violation\(s\) — held$",
            Assert.Single(report, l => l.StartsWith("- safe policies", StringComparison.Ordinal)));
    }

    [Fact]
    public void Experiment_on_migrate_munmap_in_natural_runs_shows_the_seeds_claim_mmap_only_stalling_writers_on_2MiB_copies()
    {
        // Issue 13's acceptance, the LKML thread's claim in an ordinary run (no exploration, no injected delay), with the
        // defaults: the small preset has transparent_hugepage=always, so region A is THPs and a migration wait is a
        // 2 MiB copy (~420 µs at SLIT 20). mmap-only holds mmap_lock through it: writers of B and then the faults behind
        // them queue. merged holds only A's VMA lock: only a munmap of A itself (one writer, one round in 128) waits.
        // vma-bailout's bail-out is in do_swap_page: PMD migration entries are waited for under the VMA lock.
        var outDir = Path.Combine(_tmp, "thp");
        var (code, _, stderr) = Cli("experiment", "--policies", "mmap-only,merged,vma-bailout", "--workloads", "migrate-munmap", "--no-explore", "--out", outDir);
        Assert.True(code == 0, stderr);
        var report = Lines(File.ReadAllText(Path.Combine(outDir, "report.md")));
        string mmapOnly = Assert.Single(report, l => l.StartsWith("- mmap-only:", StringComparison.Ordinal));
        var m = System.Text.RegularExpressions.Regex.Match(mmapOnly, @"writer wait p99 ([\d,]+) ns vs merged ([\d,]+) ns \(([\d.]+)x\); fault latency p99 ([\d,]+) ns vs merged ([\d,]+) ns \(([\d.]+)x\)");
        Assert.True(m.Success, mmapOnly);
        double Num(int g) => double.Parse(m.Groups[g].Value.Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Num(1) >= 400_000, $"mmap-only's writer wait p99 should be a 2 MiB copy (~420 µs): {mmapOnly}");
        Assert.True(Num(1) >= 3 * Num(2), $"mmap-only's writer wait p99 should be at least 3x merged's: {mmapOnly}");
        Assert.True(Num(4) >= 2 * Num(5), $"mmap-only's fault latency p99 should be at least 2x merged's: {mmapOnly}");
        Assert.Matches(@"^- the seed's claim \(.*\): held$", Assert.Single(report, l => l.StartsWith("- the seed's claim", StringComparison.Ordinal)));
        string bailout = Assert.Single(report, l => l.StartsWith("- vma-bailout:", StringComparison.Ordinal));
        Assert.Matches(@" [1-9]\d* THPs \(waited for under the VMA lock", bailout);
        Assert.Matches(@"^- vma-bailout's writer stall: .*: held$", Assert.Single(report, l => l.StartsWith("- vma-bailout's writer stall", StringComparison.Ordinal)));
    }

    [Fact]
    public void Under_exploration_the_report_does_not_judge_the_seeds_claim()
    {
        // Injected delays set both policies' tails: a verdict on a ratio of tails would be about the delays.
        var outDir = Path.Combine(_tmp, "explore");
        var (code, _, stderr) = Cli("experiment", "--policies", "mmap-only,merged", "--workloads", "migrate-munmap", "--ops", "500", "--out", outDir);
        Assert.True(code == 0, stderr);
        var report = Lines(File.ReadAllText(Path.Combine(outDir, "report.md")));
        Assert.EndsWith("not judged (schedule exploration's injected delays set the tails; --no-explore measures it)",
            Assert.Single(report, l => l.StartsWith("- the seed's claim", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("--policies", "merged,bogus", "--policies 'bogus'")]
    [InlineData("--silos", "0", "--silos '0': expected silo counts in 1..16")]
    [InlineData("--silos", "1,x", "--silos 'x'")]
    [InlineData("--cluster", "redis://127.0.0.1:6379", "--cluster: only with --silos")]
    [InlineData("--cluster", "mysql://h/db", "--cluster 'mysql://h/db': expected redis://HOST:PORT or postgres://")]
    [InlineData("--presets", "nope", "--presets")]
    [InlineData("--workloads", "nope", "--workloads 'nope'")]
    [InlineData("--cpus", "64", "--cpus 64")]
    public void Experiment_bad_input_exits_2_with_one_line_and_no_folder(string option, string value, string named)
    {
        var outDir = Path.Combine(_tmp, "bad");
        var (code, stdout, stderr) = Cli("experiment", option, value, "--ops", "100", "--out", outDir);
        Assert.Equal(2, code);
        var line = Assert.Single(Lines(stderr));
        Assert.StartsWith("distemu: error: ", line);
        Assert.Contains(named, line);
        Assert.DoesNotContain("run 1/", stdout);
        Assert.False(Directory.Exists(outDir));
        Assert.Empty(Directory.GetDirectories(_tmp));
    }

    [Fact]
    public void Experiment_silos_run_on_the_orleans_engine_not_sim()
    {
        var outDir = Path.Combine(_tmp, "bad");
        var (code, _, stderr) = Cli("experiment", "--silos", "1,2", "--engine", "sim", "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("--silos: runs silo processes on the orleans engine (not --engine sim)", Assert.Single(Lines(stderr)));
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Experiment_help_lists_the_options()
    {
        var (code, stdout, _) = Cli("experiment", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--policies", stdout);
        Assert.Contains("--silos", stdout);
        Assert.Contains("experiment", Cli("--help").Out);
    }
}
