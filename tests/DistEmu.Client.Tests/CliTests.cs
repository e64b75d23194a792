using System.Text.Json;
using DistEmu.Client;

namespace DistEmu.Client.Tests;

public sealed class CliTests : InProcessCliTests
{
    [Fact]
    public void An_orleans_run_under_a_quantum_reports_the_bound_and_the_measured_skew_in_stats_json()
    {
        var bounded = Path.Combine(_tmp, "bounded");
        var (code, stdout, stderr) = Cli("run", "--preset", "small", "--workload", "page-fault1", "--param", "size_mb=4", "--ops", "1500", "--quantum", "1000", "--out", bounded);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(bounded, "stats.json")));
        var q = doc.RootElement.GetProperty("quantum");
        Assert.Equal(1000, q.GetProperty("ns").GetInt64());
        long skew = q.GetProperty("max_skew_ns").GetInt64();
        Assert.True(skew > 0, "eight CPUs faulting under a 1 µs quantum never measured apart");
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"measured max skew {skew:N0} ns"), stdout); // the printed line and the file agree

        var lax = Path.Combine(_tmp, "lax");
        (code, _, stderr) = Cli("run", "--preset", "small", "--workload", "page-fault1", "--param", "size_mb=4", "--ops", "500", "--out", lax);
        Assert.True(code == 0, stderr);
        using var laxDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(lax, "stats.json")));
        Assert.False(laxDoc.RootElement.TryGetProperty("quantum", out _), "a run without --quantum has no skew bound to report");
    }

    [Theory]
    [InlineData("orleans")]
    [InlineData("sim")]
    public void Run_small_page_fault1_writes_all_files_and_counts_one_fault_per_written_page(string engine)
    {
        var outDir = Path.Combine(_tmp, "run");
        const int ops = 2000, sizeMb = 4;
        var (code, stdout, stderr) = Cli("run", "--engine", engine, "--preset", "small", "--workload", "page-fault1", "--param", $"size_mb={sizeMb}", "--ops", $"{ops}", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("vma_lock", stdout);
        foreach (var f in new[] { "config.yaml", "stats.json", "vmstat", "lock_stat", "summary.md" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Assert.Empty(Directory.GetDirectories(_tmp, "*.tmp-*"));

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var r = doc.RootElement;
        Assert.Equal("completed", r.GetProperty("status").GetString());
        Assert.Equal(engine, r.GetProperty("engine").GetString());
        if (engine == "orleans")
        {
            var calls = r.GetProperty("grain_calls");
            Assert.True(calls.GetProperty("total").GetInt64() >= r.GetProperty("faults").GetInt64(), "a fault costs at least one grain call");
            Assert.Equal(0, calls.GetProperty("cross_silo").GetInt64());
        }
        Assert.Equal("merged", r.GetProperty("policy").GetString());
        Assert.Equal(1, r.GetProperty("seed").GetInt64());
        var m = r.GetProperty("machine");
        Assert.Equal(2, m.GetProperty("nodes").GetInt32());
        Assert.Equal(8, m.GetProperty("cpus").GetInt32());
        Assert.Equal(8L << 30, m.GetProperty("memory_bytes").GetInt64());
        Assert.Equal("page-fault1", r.GetProperty("workload").GetProperty("name").GetString());
        Assert.Equal("4", r.GetProperty("workload").GetProperty("params").GetProperty("size_mb").GetString());
        foreach (var k in new[] { "host_seconds", "emulated_ns", "faults", "faults_per_host_second", "faults_per_emulated_second" })
            Assert.True(r.GetProperty(k).GetDouble() > 0, k);
        var vm = r.GetProperty("vmstat");
        foreach (var k in new[] { "pgfault", "pgmajfault", "vma_lock_success", "vma_lock_abort", "vma_lock_retry", "vma_lock_miss", "numa_hint_faults", "numa_pages_migrated", "pgmigrate_success", "pgmigrate_fail" })
            Assert.Equal(JsonValueKind.Number, vm.GetProperty(k).ValueKind);
        var locks = r.GetProperty("locks").EnumerateArray().ToList();
        Assert.Contains(locks, l => l.GetProperty("name").GetString() == "mmap_lock" && l.GetProperty("mode").GetString() == "read");
        Assert.Contains(locks, l => l.GetProperty("name").GetString() == "vma_lock" && l.GetProperty("mode").GetString() == "write");
        foreach (var l in locks)
        {
            Assert.Equal(JsonValueKind.Number, l.GetProperty("acquisitions").ValueKind);
            Assert.Equal(JsonValueKind.Number, l.GetProperty("contentions").ValueKind);
            foreach (var h in new[] { "wait_ns", "hold_ns" })
                foreach (var k in new[] { "min", "p50", "p99", "max", "total" })
                    Assert.Equal(JsonValueKind.Number, l.GetProperty(h).GetProperty(k).ValueKind);
        }
        foreach (var h in new[] { "migration_wait_ns", "fault_latency_ns", "writer_wait_ns" })
            foreach (var k in new[] { "count", "p50", "p99", "max", "total" })
                Assert.Equal(JsonValueKind.Number, r.GetProperty(h).GetProperty(k).ValueKind);
        Assert.True(r.GetProperty("sanitizer").GetProperty("enabled").GetBoolean());
        Assert.Equal(0, r.GetProperty("sanitizer").GetProperty("violations").GetArrayLength());

        // page-fault1 per task over 4 MiB (1,024 pages), 2,000 ops: mmap, 1,024 writes, munmap, mmap, 973 writes.
        const long writesPerTask = 1024 + 973;
        Assert.Equal(8 * writesPerTask, vm.GetProperty("pgfault").GetInt64());

        var vmstat = File.ReadAllLines(Path.Combine(outDir, "vmstat"));
        Assert.Contains($"pgfault {8 * writesPerTask}", vmstat);
        var lockStat = File.ReadAllLines(Path.Combine(outDir, "lock_stat"));
        Assert.Equal("lock_stat version 0.4", lockStat[0]);
        Assert.Contains(lockStat, l => l.TrimStart().StartsWith("&mm->mmap_lock-R:", StringComparison.Ordinal));
        Assert.Contains("policy: merged", File.ReadAllText(Path.Combine(outDir, "config.yaml")));
    }

    [Theory]
    [InlineData("--preset", "nosuch-preset")]
    [InlineData("--workload", "nosuch-workload")]
    [InlineData("--policy", "nosuch-policy")]
    [InlineData("--param", "nosuch_param=1")]
    public void Bad_input_exits_2_with_one_line_naming_it_and_no_results_folder(string option, string value)
    {
        var outDir = Path.Combine(_tmp, "bad");
        var (code, _, stderr) = Cli("run", option, value, "--ops", "10", "--out", outDir);
        Assert.Equal(2, code);
        var lines = Lines(stderr);
        Assert.Single(lines);
        Assert.StartsWith("distemu: error: ", lines[0]);
        Assert.Contains(value.Split('=')[0], lines[0]);
        Assert.Empty(Directory.GetFileSystemEntries(_tmp));
    }

    [Fact]
    public void An_unknown_engine_is_a_clear_error()
    {
        var (code, _, stderr) = Cli("run", "--engine", "warp", "--out", Path.Combine(_tmp, "o"));
        Assert.Equal(2, code);
        Assert.Contains("--engine 'warp': unknown engine", stderr);
        Assert.Empty(Directory.GetFileSystemEntries(_tmp));
    }

    [Fact]
    public void Malformed_yaml_reports_file_line_and_column()
    {
        var file = Path.Combine(_tmp, "bad.yaml");
        File.WriteAllText(file, "name: bad\nnodes: 2\ndistance: [[10, 20], [20, 10]\n");
        var (code, _, stderr) = Cli("run", "--machine", file, "--ops", "10", "--out", Path.Combine(_tmp, "out"));
        Assert.Equal(2, code);
        var line = Assert.Single(Lines(stderr));
        Assert.Matches(@"^distemu: error: .*bad\.yaml:\d+:\d+: malformed YAML", line);
        Assert.False(Directory.Exists(Path.Combine(_tmp, "out")));
    }

    [Fact]
    public void Unknown_cost_key_names_file_line_and_key()
    {
        var file = Path.Combine(_tmp, "cost.yaml");
        File.WriteAllText(file, "base: small\ncost:\n  fault_entry_ns: 100\n  no_such_ns: 5\n");
        var (code, _, stderr) = Cli("run", "--machine", file, "--ops", "10", "--out", Path.Combine(_tmp, "out"));
        Assert.Equal(2, code);
        Assert.Contains("cost.yaml:4:3: unknown cost key 'no_such_ns'", stderr);
    }

    [Fact]
    public void Invalid_machine_is_bad_input()
    {
        var file = Path.Combine(_tmp, "m.yaml");
        File.WriteAllText(file, "base: small\nnodes: 3\n");
        var (code, _, stderr) = Cli("run", "--machine", file, "--ops", "10", "--out", Path.Combine(_tmp, "out"));
        Assert.Equal(2, code);
        Assert.Contains("distance", Assert.Single(Lines(stderr)));
    }

    [Fact]
    public void User_file_with_base_overrides_fields()
    {
        var file = Path.Combine(_tmp, "m.yaml");
        File.WriteAllText(file, "base: small\nname: mine\nmemory_per_node: 1GiB\npolicy: mmap-only\ncost:\n  fault_entry_ns: 300\n");
        var outDir = Path.Combine(_tmp, "out");
        var (code, _, stderr) = Cli("run", "--machine", file, "--param", "size_mb=1", "--ops", "300", "--out", outDir);
        Assert.True(code == 0, stderr);
        var config = File.ReadAllText(Path.Combine(outDir, "config.yaml"));
        Assert.Contains("policy: mmap-only", config);
        Assert.Contains("fault_entry_ns: 300", config);
        Assert.Contains($"memory_per_node: {1L << 30}", config);
    }

    [Fact]
    public void Presets_lists_all_five()
    {
        var (code, stdout, _) = Cli("presets");
        Assert.Equal(0, code);
        foreach (var p in new[] { "small", "epyc-2s-nps4", "spr-4s-snc4", "large-1024", "huge-4096" })
            Assert.Contains(p, stdout);
        Assert.Contains("4096", stdout);
    }

    [Theory]
    [InlineData("run")]
    [InlineData("presets")]
    public void Every_verb_has_help(string verb)
    {
        var (code, stdout, _) = Cli(verb, "--help");
        Assert.Equal(0, code);
        // Generated by System.CommandLine: a "Usage:" section naming the command.
        Assert.Contains("Usage:", stdout);
        Assert.Contains("distemu " + verb + " [options]", stdout);
    }
}
