using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace DistEmu.Cluster.Tests;

/// <summary><c>distemu experiment --silos 1,2</c>: local silo processes and a redis-server of its own, stopped afterwards.</summary>
public sealed partial class ExperimentSilosTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("distemu-cluster-exp-").FullName;

    public void Dispose() => Directory.Delete(_tmp, true);

    [GeneratedRegex(@"pids? (\d+(?:, \d+)*)")]
    private static partial Regex Pids();

    [Fact]
    public void Experiment_on_1_and_2_silos_reports_both_rows_with_the_scaling_model_and_stops_every_process()
    {
        var outDir = Path.Combine(_tmp, "exp");
        var (code, stdout, stderr) = Cli.Run("experiment", "--silos", "1,2", "--policies", "merged", "--presets", "small", "--workloads", "page-fault1",
            "--param", "size_mb=1", "--ops", "300", "--out", outDir);
        Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout}");

        // Everything the experiment started (silos, redis-server) is gone once it returns.
        var pids = Pids().Matches(stdout).SelectMany(m => m.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToList();
        Assert.True(pids.Count == 5, $"1 + 2 silos and 2 redis-servers announced, got {pids.Count}:\n{stdout}");
        foreach (var pid in pids)
        {
            bool alive;
            try { using var p = Process.GetProcessById(pid); alive = !p.HasExited; }
            catch (ArgumentException) { alive = false; }
            Assert.False(alive, $"process {pid} started by the experiment still runs");
        }

        var csv = File.ReadAllLines(Path.Combine(outDir, "results.csv"));
        Assert.Equal(3, csv.Length);
        var head = csv[0].Split(',').ToList();
        string Cell(int row, string column) => csv[row].Split(',')[head.IndexOf(column)];
        foreach (var column in new[] { "silos", "faults_per_host_second_per_silo", "grain_calls_per_fault", "cross_silo_fraction", "local_call_us", "cross_silo_call_us", "model_cross_silo_us_per_fault" })
            Assert.Contains(column, head);
        double D(int row, string column) => double.Parse(Cell(row, column), CultureInfo.InvariantCulture);
        Assert.Equal(("1", "2"), (Cell(1, "silos"), Cell(2, "silos")));
        Assert.True(D(1, "grain_calls_per_fault") >= 1 && D(2, "grain_calls_per_fault") >= 1, "a fault costs at least one grain call");
        Assert.Equal(0, D(1, "cross_silo_fraction"));
        Assert.True(D(2, "cross_silo_fraction") > 0, "on two silos node 1's CPUs call the mm on node 0's silo");
        Assert.Equal("", Cell(1, "cross_silo_call_us")); // one silo: nothing to cross
        Assert.True(D(2, "cross_silo_call_us") > 0 && D(1, "local_call_us") > 0, "the ping costs were measured");
        Assert.Equal(0, D(1, "model_cross_silo_us_per_fault"));
        double expected = D(2, "grain_calls_per_fault") * D(2, "cross_silo_fraction") * Math.Max(0, D(2, "cross_silo_call_us") - D(2, "local_call_us"));
        Assert.True(Math.Abs(D(2, "model_cross_silo_us_per_fault") - expected) <= 0.01 * Math.Max(1, expected) + 0.01,
            $"model = calls/fault × cross fraction × extra call cost: {Cell(2, "model_cross_silo_us_per_fault")} vs {expected}");

        var report = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("## Scaling across silos", report);
        Assert.Contains("grain calls per fault × cross-silo fraction × (cross-silo − local call cost)", report);
        // One row per preset and silo count: faults/host s and per silo.
        Assert.Matches(@"\n\| small \| 1 \| 1 \| [\d,]+ \| [\d,]+ \|", report);
        Assert.Matches(@"\n\| small \| 2 \| 1 \| [\d,]+ \| [\d,]+ \|", report);
    }
}
