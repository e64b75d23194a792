using System.Text.Json;

namespace DistEmu.Client.Tests;

/// <summary>
/// distemu explore: the unsafe policies' races are found with a seed, the printed command replays that schedule with
/// the same violation, a safe policy is clean (and --expect-clean says so by its exit code), and bad input writes nothing.
/// </summary>
public class ExploreCommandTests : InProcessCliTests
{
    [Fact]
    public void A_finding_comes_with_a_run_command_that_replays_its_schedule()
    {
        var dir = Path.Combine(_tmp, "explore");
        var (code, stdout, stderr) = Cli("explore", "--policies", "merged,vma-unlocked", "--schedules", "60", "--param", "thp=off", "--out", dir); // the 4 KiB race
        Assert.True(code == 0, stderr);

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explore.json")));
        var root = doc.RootElement;
        Assert.Equal("completed", root.GetProperty("status").GetString());
        Assert.Equal("16", root.GetProperty("params").GetProperty("chunk_pages").GetString()); // the effective parameters
        var policies = root.GetProperty("policies").EnumerateArray().ToDictionary(p => p.GetProperty("policy").GetString()!);
        Assert.Equal(60, policies["merged"].GetProperty("clean").GetInt32());
        Assert.Empty(policies["merged"].GetProperty("findings").EnumerateArray());

        var s8 = policies["vma-unlocked"].GetProperty("findings").EnumerateArray().First(f => f.GetProperty("invariant").GetString() == "S8");
        long seed = s8.GetProperty("first_seed").GetInt64();
        Assert.Equal(seed, s8.GetProperty("seeds")[0].GetInt64());
        long at = s8.GetProperty("first").GetProperty("emulated_ns").GetInt64();
        Assert.NotEmpty(s8.GetProperty("first").GetProperty("history").EnumerateArray());
        string reproduce = s8.GetProperty("reproduce").GetString()!;
        Assert.Contains(reproduce, stdout);
        Assert.True(File.Exists(Path.Combine(dir, "summary.md")));

        // The printed command, run as printed, hits the same violation at the same emulated time.
        var args = reproduce.Split(' ')[1..].Append("--out").Append(Path.Combine(_tmp, "replayed")).ToArray();
        var (runCode, _, runErr) = Cli(args);
        Assert.True(runCode == 0, runErr);
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(_tmp, "replayed", "stats.json")));
        var first = stats.RootElement.GetProperty("sanitizer").GetProperty("violations")[0];
        Assert.Equal("S8", first.GetProperty("invariant").GetString());
        Assert.Equal(at, first.GetProperty("emulated_ns").GetInt64());
        Assert.Contains("explore: on", File.ReadAllText(Path.Combine(_tmp, "replayed", "config.yaml")));
    }

    [Fact]
    public void Expect_clean_fails_only_when_something_is_found()
    {
        var (clean, _, err) = Cli("explore", "--policies", "merged", "--schedules", "20", "--expect-clean", "--out", Path.Combine(_tmp, "a"));
        Assert.True(clean == 0, err);

        var (found, stdout, stderr) = Cli("explore", "--policies", "lock-dropped", "--schedules", "300", "--stop-at-first", "--expect-clean", "--param", "thp=off", "--out", Path.Combine(_tmp, "b"));
        Assert.Equal(1, found);
        Assert.Contains("--expect-clean", stderr);
        Assert.Contains("stopped at seed", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_tmp, "b", "explore.json")));
        var p = doc.RootElement.GetProperty("policies")[0];
        long stoppedAt = p.GetProperty("stopped_at_seed").GetInt64();
        Assert.Equal(stoppedAt, p.GetProperty("schedules").GetInt64()); // seeds 1..stoppedAt
        Assert.Equal(1, p.GetProperty("with_findings").GetInt32());
    }

    [Theory]
    [InlineData("--schedules", "0", "--schedules 0")]
    [InlineData("--policies", "merged,nope", "--policies 'nope'")]
    [InlineData("--workload", "page-fault9", "--workload 'page-fault9'")]
    [InlineData("--jobs", "0", "--jobs 0")]
    [InlineData("--tasks", "99", "--tasks 99")]
    public void Bad_input_names_the_option_and_writes_nothing(string option, string value, string expected)
    {
        var dir = Path.Combine(_tmp, "never");
        var (code, _, stderr) = Cli("explore", option, value, "--schedules", option == "--schedules" ? "0" : "5", "--out", dir);
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Run_explore_is_refused_off_the_sim_engine_and_without_the_sanitizer()
    {
        var (code, _, stderr) = Cli("run", "--explore", "--ops", "10", "--out", Path.Combine(_tmp, "x"));
        Assert.Equal(2, code);
        Assert.Contains("--engine sim", stderr);
        (code, _, stderr) = Cli("run", "--engine", "sim", "--explore", "--sanitizer", "off", "--ops", "10", "--out", Path.Combine(_tmp, "y"));
        Assert.Equal(2, code);
        Assert.Contains("needs the sanitizer", stderr);
        Assert.False(Directory.Exists(Path.Combine(_tmp, "x")));
    }

    [Fact]
    public void A_bug_switched_in_is_found_and_its_reproduce_command_switches_it_in_too()
    {
        var dir = Path.Combine(_tmp, "fork");
        var (code, stdout, stderr) = Cli("explore", "--workload", "fork-fault", "--policies", "merged", "--bug", "fork-without-vma-write-lock",
            "--schedules", "5", "--out", dir);
        Assert.True(code == 0, stderr);
        Assert.Contains("bugs switched in: fork-without-vma-write-lock", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explore.json")));
        Assert.Equal("fork-without-vma-write-lock", doc.RootElement.GetProperty("bugs")[0].GetString());
        var findings = doc.RootElement.GetProperty("policies")[0].GetProperty("findings").EnumerateArray().ToList();
        Assert.All(findings, f => Assert.Equal("S4", f.GetProperty("invariant").GetString()));
        var s4 = findings.Single(f => f.GetProperty("site").GetString() == "dup_mmap (anon_vma_fork, copy_page_range), VMA not write-locked");
        string reproduce = s4.GetProperty("reproduce").GetString()!;
        Assert.Contains("--bug fork-without-vma-write-lock", reproduce);

        var (runCode, runOut, runErr) = Cli([.. reproduce.Split(' ')[1..], "--out", Path.Combine(_tmp, "again")]);
        Assert.True(runCode == 0, runErr);
        Assert.Contains("bugs switched in: fork-without-vma-write-lock", runOut);
        Assert.Contains("sanitizer: ", runOut);
        Assert.Contains("S4 violated", runOut);
        Assert.Contains("bugs: [fork-without-vma-write-lock]", File.ReadAllText(Path.Combine(_tmp, "again", "config.yaml")));
    }

    [Theory]
    [InlineData(new[] { "run", "--workload", "fork-fault", "--ops", "10" }, "fork runs on the sim engine only")]
    [InlineData(new[] { "run", "--engine", "sim", "--bug", "no-such-bug", "--ops", "10" }, "'no-such-bug'")]
    [InlineData(new[] { "run", "--trace", "t.perf", "--bug", "mmap-unlock-after-vma-fault" }, "not a trace replay")]
    [InlineData(new[] { "run", "--bug", "mm-lock-seq-without-acquire-release", "--ops", "10" }, "under the sim engine only")]
    [InlineData(new[] { "explore", "--bug", "no-such-bug" }, "fork-without-vma-write-lock")]
    [InlineData(new[] { "experiment", "--engine", "orleans", "--workloads", "fork-fault" }, "fork runs on the sim engine only")]
    public void Forking_workloads_off_the_sim_engine_and_bad_bug_switches_are_refused_before_anything_runs(string[] args, string expected)
    {
        var dir = Path.Combine(_tmp, "never");
        var (code, _, stderr) = Cli([.. args, "--out", dir]);
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Duration_ends_the_exploration_normally_with_a_share_of_the_time_per_policy()
    {
        var dir = Path.Combine(_tmp, "timed");
        var (code, stdout, stderr) = Cli("explore", "--policies", "merged,ptl-drop", "--schedules", "1000000", "--duration", "2s", "--out", dir);
        Assert.True(code == 0, stderr);
        Assert.Contains("stopped early: --duration 2s reached", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explore.json")));
        Assert.Equal("completed", doc.RootElement.GetProperty("status").GetString());
        Assert.StartsWith("--duration 2s", doc.RootElement.GetProperty("stopped").GetString());
        foreach (var p in doc.RootElement.GetProperty("policies").EnumerateArray())
        {
            int n = p.GetProperty("schedules").GetInt32();
            Assert.InRange(n, 1, 999_999); // each policy ran, and none ran them all
            Assert.Equal(n, p.GetProperty("clean").GetInt32());
        }
    }
}
