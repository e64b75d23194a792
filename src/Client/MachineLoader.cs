using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using DistEmu.Grains.Placement;
using DistEmu.Kernel.Machine;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace DistEmu.Client;

/// <summary>
/// Loads machine descriptions (presets/*.yaml and user files given with --machine) into a <see cref="MachineSpec"/>.
/// Keys: name, nodes, cpus_per_node, memory_per_node, page_size, distance, policy, transparent_hugepage, cost (CostModel properties in
/// snake_case), placement (node ranges → silo, MachineLoader.Placement.cs), base (a preset to start from; user files
/// only), run (written by distemu into config.yaml; ignored).
/// Every error names the file, line and column.
/// </summary>
public static partial class MachineLoader
{
    private static readonly Dictionary<string, PropertyInfo> CostProperties = typeof(CostModel)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite)
        .ToDictionary(p => SnakeCase(p.Name), p => p);

    public static IReadOnlyDictionary<string, PropertyInfo> CostKeys => CostProperties;

    [GeneratedRegex("(?<=[a-z0-9])([A-Z])")]
    private static partial Regex UpperAfterLower();

    public static string SnakeCase(string pascal) => UpperAfterLower().Replace(pascal, "_$1").ToLowerInvariant();

    /// <summary>The repository root: the first folder, walking up from the executable and from the current directory, holding presets/ and DistEmu.sln.</summary>
    public static string? FindRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                if (Directory.Exists(Path.Combine(d.FullName, "presets")) && File.Exists(Path.Combine(d.FullName, "DistEmu.sln")))
                    return d.FullName;
            }
        }
        return null;
    }

    /// <summary>
    /// A checkout's presets/ (so edits there apply), else the copy beside the executable: the installed tool
    /// (scripts/install.sh) carries one, so its commands run from any folder.
    /// </summary>
    public static string PresetsDir()
    {
        if (FindRoot() is { } root) return Path.Combine(root, "presets");
        var packed = Path.Combine(AppContext.BaseDirectory, "presets");
        return Directory.Exists(packed) ? packed
            : throw new UsageException("cannot find the presets/ folder (looked upward from the executable and the current directory for a folder with presets/ and DistEmu.sln, and beside the executable)");
    }

    public static IReadOnlyList<string> PresetNames() =>
        Directory.GetFiles(PresetsDir(), "*.yaml").Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal).ToList();

    public static MachineSpec LoadPreset(string name)
    {
        var names = PresetNames();
        if (!names.Contains(name))
            throw new UsageException($"preset '{name}': unknown preset; expected one of {string.Join(", ", names)}");
        return LoadFile(Path.Combine(PresetsDir(), name + ".yaml"), allowBase: false);
    }

    public static MachineSpec LoadFile(string path, bool allowBase = true) => LoadFile(path, allowBase, out _);

    private static MachineSpec LoadFile(string path, bool allowBase, out PlacementMap? placement)
    {
        placement = null;
        List<PlacementEntry>? entries = null;
        if (!File.Exists(path))
            throw new UsageException($"machine file '{path}': no such file");
        var stream = new YamlStream();
        // The scanner is kept so that an error YamlDotNet throws without a position (it has thrown
        // InvalidOperationException from inside its scanner) is still reported where the scanner stopped.
        Scanner? scanner = null;
        try
        {
            using var reader = new StreamReader(path, Encoding.UTF8);
            scanner = new Scanner(reader);
            stream.Load(new Parser(scanner));
        }
        catch (YamlException e)
        {
            throw new UsageException($"{path}:{e.Start.Line}:{e.Start.Column}: malformed YAML: {FirstLine(e.Message)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{path}: cannot read it: {e.Message}");
        }
        catch (Exception e)
        {
            var at = scanner?.CurrentPosition ?? Mark.Empty;
            throw new UsageException($"{path}:{at.Line}:{at.Column}: malformed YAML: {FirstLine(e.Message)}");
        }
        if (stream.Documents.Count == 0)
            throw new UsageException($"{path}:1:1: empty machine file");
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new UsageException($"{Where(path, stream.Documents[0].RootNode)}: a machine file must be a mapping of keys to values");

        var spec = new MachineSpec { Name = Path.GetFileNameWithoutExtension(path) };
        // base first, so every other key overrides it whatever the order in the file.
        foreach (var (k, v) in root.Children)
        {
            if (Key(path, k) == "base")
            {
                if (!allowBase)
                    throw new UsageException($"{Where(path, k)}: 'base' is only allowed in user machine files");
                var baseName = Scalar(path, v);
                try
                {
                    spec = LoadPreset(baseName);
                }
                catch (UsageException e)
                {
                    throw new UsageException($"{Where(path, v)}: base: {e.Message}");
                }
            }
        }
        foreach (var (k, v) in root.Children)
        {
            var key = Key(path, k);
            if (key == "placement")
            {
                entries = PlacementEntries(path, v); // checked against the node count once every key is read
                continue;
            }
            spec = key switch
            {
                "base" or "run" => spec,
                "name" => spec with { Name = Scalar(path, v) },
                "nodes" => spec with { Nodes = (int)Integer(path, v, int.MaxValue) },
                "cpus_per_node" => spec with { CpusPerNode = (int)Integer(path, v, int.MaxValue) },
                "memory_per_node" => spec with { MemoryPerNodeBytes = Bytes(path, v) },
                "page_size" => spec with { PageSize = (int)Bytes(path, v, int.MaxValue) },
                "distance" => spec with { Distance = Matrix(path, v) },
                "policy" => spec with { Policy = Policy(path, v) },
                "transparent_hugepage" => spec with { Thp = Thp(path, v) },
                "cost" => spec with { Cost = Cost(path, v, spec.Cost) },
                _ => throw new UsageException($"{Where(path, k)}: unknown key '{key}'; expected one of base, name, nodes, cpus_per_node, memory_per_node, page_size, distance, policy, transparent_hugepage, cost, placement"),
            };
        }
        try
        {
            spec = spec.Validate();
        }
        catch (KernelConfigException e)
        {
            throw new UsageException($"{path}: invalid machine: {e.Message}");
        }
        if (entries != null) placement = Placement(entries, spec.Nodes); // after the node count is final, whatever the key order
        return spec;
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    private static string Where(string path, YamlNode n) => $"{path}:{n.Start.Line}:{n.Start.Column}";

    private static string Key(string path, YamlNode k) =>
        k is YamlScalarNode s && s.Value != null ? s.Value : throw new UsageException($"{Where(path, k)}: keys must be plain names");

    private static string Scalar(string path, YamlNode n) =>
        n is YamlScalarNode s && s.Value != null ? s.Value : throw new UsageException($"{Where(path, n)}: expected a single value");

    private static long Integer(string path, YamlNode n, long max = long.MaxValue)
    {
        var s = Scalar(path, n).Replace("_", "");
        if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < 0 || v > max)
            throw new UsageException($"{Where(path, n)}: '{s}' is not a non-negative integer");
        return v;
    }

    private static long Bytes(string path, YamlNode n, long max = long.MaxValue)
    {
        var s = Scalar(path, n).Replace("_", "").Replace(" ", "");
        if (TryParseBytes(s, out var v) && v <= max) return v;
        throw new UsageException($"{Where(path, n)}: '{s}' is not a size (plain bytes or e.g. 4KiB, 512MiB, 4GiB, 1TiB)");
    }

    /// <summary>Plain bytes or a number with a binary unit: K/KiB, M/MiB, G/GiB, T/TiB (all powers of 1024).</summary>
    public static bool TryParseBytes(string s, out long bytes)
    {
        bytes = 0;
        var m = Regex.Match(s, @"^(\d+)([KMGT]?)(i?B)?$", RegexOptions.IgnoreCase);
        if (!m.Success || !long.TryParse(m.Groups[1].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)) return false;
        int shift = m.Groups[2].Value.ToUpperInvariant() switch { "K" => 10, "M" => 20, "G" => 30, "T" => 40, _ => 0 };
        if (n > (long.MaxValue >> shift)) return false;
        bytes = n << shift;
        return true;
    }

    public static string FormatBytes(long b)
    {
        foreach (var (unit, shift) in new[] { ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10) })
            if (b >= 1L << shift && b % (1L << shift) == 0) return $"{b >> shift}{unit}";
        return b.ToString(CultureInfo.InvariantCulture);
    }

    private static int[][] Matrix(string path, YamlNode n)
    {
        if (n is not YamlSequenceNode rows)
            throw new UsageException($"{Where(path, n)}: distance must be a list of lists (the SLIT matrix)");
        return rows.Children.Select(r => r is YamlSequenceNode row
                ? row.Children.Select(c => (int)Integer(path, c, 255)).ToArray()
                : throw new UsageException($"{Where(path, r)}: each distance row must be a list"))
            .ToArray();
    }

    private static FaultPolicy Policy(string path, YamlNode n)
    {
        try
        {
            return FaultPolicies.Parse(Scalar(path, n));
        }
        catch (KernelConfigException e)
        {
            throw new UsageException($"{Where(path, n)}: {e.Message}");
        }
    }

    private static TransparentHugepage Thp(string path, YamlNode n)
    {
        try
        {
            return TransparentHugepages.Parse(Scalar(path, n));
        }
        catch (KernelConfigException e)
        {
            throw new UsageException($"{Where(path, n)}: {e.Message}");
        }
    }

    private static CostModel Cost(string path, YamlNode n, CostModel start)
    {
        if (n is not YamlMappingNode map)
            throw new UsageException($"{Where(path, n)}: cost must be a mapping of cost names to numbers");
        var cost = start with { };
        foreach (var (k, v) in map.Children)
        {
            var key = Key(path, k);
            if (!CostProperties.TryGetValue(key, out var prop))
                throw new UsageException($"{Where(path, k)}: unknown cost key '{key}'; expected one of {string.Join(", ", CostProperties.Keys)}");
            var s = Scalar(path, v).Replace("_", "");
            object value;
            if (prop.PropertyType == typeof(double))
                value = double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw new UsageException($"{Where(path, v)}: cost.{key}: '{s}' is not a number");
            else if (prop.PropertyType == typeof(int))
                value = (int)Integer(path, v, int.MaxValue);
            else
                value = Integer(path, v);
            prop.SetValue(cost, value);
        }
        return cost;
    }
}
