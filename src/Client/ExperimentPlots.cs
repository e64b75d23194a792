using ScottPlot;

namespace DistEmu.Client;

/// <summary>
/// The experiment's PNG plots, drawn with ScottPlot 5 (SkiaSharp; the Linux native library comes with
/// SkiaSharp.NativeAssets.Linux.NoDependencies, so no system libraries are needed headless).
/// Bars are means over repeats; one bar group per policy, one bar colour per series.
/// </summary>
public static class ExperimentPlots
{
    /// <summary>Writes the plots into <paramref name="dir"/>; returns their file names.</summary>
    public static IReadOnlyList<string> Write(IReadOnlyList<ExperimentRow> rows, string dir)
    {
        var files = new List<string>();
        var policies = rows.Select(r => r.Policy).Distinct().ToList();
        bool manyPresets = rows.Select(r => r.Preset).Distinct().Count() > 1;
        bool manyWorkloads = rows.Select(r => r.Workload).Distinct().Count() > 1;

        foreach (var w in rows.Select(r => r.Workload).Distinct())
        {
            var of = rows.Where(r => r.Workload == w).ToList();
            var name = $"faults-per-emulated-second-{w}.png";
            GroupedBars($"{w}: emulated faults/s per policy", "emulated faults / s", policies,
                Series(of, policies, r => r.FaultsPerEmulatedSecond, r => Label(r, manyPresets, false)), Path.Combine(dir, name));
            files.Add(name);
        }
        GroupedBars("writer wait p99 per policy", "writer wait p99 (emulated ns)", policies,
            Series(rows, policies, r => r.WriterWaitP99, r => Label(r, manyPresets, manyWorkloads)), Path.Combine(dir, "writer-wait-p99.png"));
        files.Add("writer-wait-p99.png");
        GroupedBars("migration wait p99 per policy", "migration wait p99 (emulated ns)", policies,
            Series(rows, policies, r => r.MigrationWaitP99, r => Label(r, manyPresets, manyWorkloads)), Path.Combine(dir, "migration-wait-p99.png"));
        files.Add("migration-wait-p99.png");
        return files;
    }

    private static string Label(ExperimentRow r, bool preset, bool workload) =>
        string.Join(" ", new[] { workload ? r.Workload : null, preset ? r.Preset : null, $"cpus={r.Cpus}" }.Where(s => s != null));

    private static List<(string Label, double[] Values)> Series(IReadOnlyList<ExperimentRow> rows, List<string> policies,
        Func<ExperimentRow, double> value, Func<ExperimentRow, string> label) =>
        rows.GroupBy(label).Select(g => (g.Key, policies.Select(p =>
        {
            var of = g.Where(r => r.Policy == p).ToList();
            return of.Count == 0 ? 0 : of.Average(value);
        }).ToArray())).ToList();

    private static void GroupedBars(string title, string yLabel, List<string> categories, List<(string Label, double[] Values)> series, string path)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double width = 0.8 / Math.Max(series.Count, 1);
        var bars = new List<Bar>();
        for (int s = 0; s < series.Count; s++)
        {
            var color = palette.GetColor(s);
            for (int c = 0; c < categories.Count; c++)
                bars.Add(new Bar
                {
                    Position = c - 0.4 + width * (s + 0.5),
                    Value = series[s].Values[c],
                    Size = width * 0.95,
                    FillColor = color,
                    Label = Compact(series[s].Values[c]), // the value above its bar, so a reader need not guess it from the axis
                });
            plt.Legend.ManualItems.Add(new LegendItem { LabelText = series[s].Label, FillColor = color });
        }
        plt.Add.Bars(bars);
        plt.Axes.Bottom.SetTicks(Enumerable.Range(0, categories.Count).Select(i => (double)i).ToArray(), categories.ToArray());
        plt.Axes.Margins(bottom: 0, top: 0.15); // room for the value labels above the tallest bar
        plt.Title(title);
        plt.XLabel("policy");
        plt.YLabel(yLabel);
        plt.ShowLegend(Edge.Right); // beside the plot, never over a bar
        plt.SavePng(path, 1000, 500);
    }

    /// <summary>A bar's value in a few characters: 1.2k, 3.4M, 950.</summary>
    private static string Compact(double v) => Math.Abs(v) switch
    {
        >= 1e9 => (v / 1e9).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture) + "G",
        >= 1e6 => (v / 1e6).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (v / 1e3).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture) + "k",
        _ => v.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture),
    };
}
