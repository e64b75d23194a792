using System.Globalization;
using System.Text.RegularExpressions;
using DistEmu.Kernel.Machine;

namespace DistEmu.Bench;

/// <summary>
/// The presets the Orleans benchmarks use, built by hand to match presets/*.yaml (so the bench needs no YAML loader).
/// <see cref="Check"/> compares them with the files when the presets/ folder can be found and prints any mismatch.
/// </summary>
public static partial class Presets
{
    public static readonly string[] Names = ["small", "large-1024", "huge-4096"];

    public static MachineSpec Get(string name) => (name switch
    {
        // 2 × 4, 4 GiB per node, SLIT 10/20.
        "small" => new MachineSpec { Name = name, Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 4L << 30, Distance = Grouped(2, 2, 20, 20) },
        // 16 × 64, 64 GiB per node, 4 groups of 4 nodes, SLIT 10/16/22.
        "large-1024" => new MachineSpec { Name = name, Nodes = 16, CpusPerNode = 64, MemoryPerNodeBytes = 64L << 30, Distance = Grouped(16, 4, 16, 22) },
        // 64 × 64, 16 GiB per node, 8 groups of 8 nodes, SLIT 10/20/30.
        "huge-4096" => new MachineSpec { Name = name, Nodes = 64, CpusPerNode = 64, MemoryPerNodeBytes = 16L << 30, Distance = Grouped(64, 8, 20, 30) },
        _ => throw new ArgumentException($"unknown preset '{name}'; expected one of {string.Join(", ", Names)}", nameof(name)),
    } with
    { PageSize = 4096, Policy = FaultPolicy.Merged }).Validate();

    private static int[][] Grouped(int nodes, int group, int near, int far) =>
        Enumerable.Range(0, nodes).Select(i => Enumerable.Range(0, nodes)
            .Select(j => i == j ? 10 : i / group == j / group ? near : far).ToArray()).ToArray();

    [GeneratedRegex(@"^\s*-\s*\[(.*)\]\s*$")]
    private static partial Regex DistanceRow();

    [GeneratedRegex(@"^(\w+):\s*([^#]*?)\s*(#.*)?$")]
    private static partial Regex TopKey();

    /// <summary>Compares the hand-built spec with presets/&lt;name&gt;.yaml; returns a one-line verdict.</summary>
    public static string Check(string name)
    {
        string? file = null;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null && file == null; d = d.Parent)
        {
            var f = Path.Combine(d.FullName, "presets", name + ".yaml");
            if (File.Exists(f)) file = f;
        }
        if (file == null) return $"preset {name}: presets/{name}.yaml not found, not checked";
        var spec = Get(name);
        var rows = new List<int[]>();
        var keys = new Dictionary<string, string>();
        foreach (var line in File.ReadLines(file))
        {
            var m = DistanceRow().Match(line);
            if (m.Success)
            {
                rows.Add(m.Groups[1].Value.Split(',').Select(s => int.Parse(s.Trim(), CultureInfo.InvariantCulture)).ToArray());
                continue;
            }
            var k = TopKey().Match(line);
            if (k.Success) keys[k.Groups[1].Value] = k.Groups[2].Value;
        }
        var problems = new List<string>();
        void Expect(string key, string want)
        {
            if (!keys.TryGetValue(key, out var got) || !string.Equals(got, want, StringComparison.OrdinalIgnoreCase))
                problems.Add($"{key}: file '{got}', bench '{want}'");
        }
        Expect("nodes", spec.Nodes.ToString(CultureInfo.InvariantCulture));
        Expect("cpus_per_node", spec.CpusPerNode.ToString(CultureInfo.InvariantCulture));
        Expect("memory_per_node", $"{spec.MemoryPerNodeBytes >> 30}GiB");
        Expect("page_size", spec.PageSize.ToString(CultureInfo.InvariantCulture));
        Expect("policy", "merged");
        if (keys.ContainsKey("cost")) problems.Add("the file overrides cost; the bench uses the defaults");
        if (rows.Count != spec.Nodes || rows.Select((r, i) => r.SequenceEqual(spec.Distance[i])).Any(eq => !eq))
            problems.Add("distance matrix differs");
        return problems.Count == 0
            ? $"preset {name}: matches {file}"
            : $"preset {name}: WARNING, differs from {file}: {string.Join("; ", problems)}";
    }
}
