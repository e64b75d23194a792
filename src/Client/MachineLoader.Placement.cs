using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using DistEmu.Grains.Placement;
using DistEmu.Kernel.Machine;
using YamlDotNet.RepresentationModel;

namespace DistEmu.Client;

/// <summary>
/// The <c>placement:</c> section of a machine file: which silo hosts the grains of which emulated nodes (orleans
/// engine), like Graphite's process map. A list of <c>- nodes: FIRST-LAST</c> (or one node) and <c>silo: INDEX</c>
/// (among the cluster's silos sorted by address); nodes not listed keep the even spread.
/// </summary>
public static partial class MachineLoader
{
    [GeneratedRegex(@"^(\d+)(?:\s*-\s*(\d+))?$")]
    private static partial Regex NodeRange();

    /// <summary>A machine file and its placement map (null when it has none).</summary>
    public static (MachineSpec Machine, PlacementMap? Placement) LoadFileWithPlacement(string path)
    {
        var machine = LoadFile(path, allowBase: true, out var placement);
        return (machine, placement);
    }

    private static List<PlacementEntry> PlacementEntries(string path, YamlNode n)
    {
        if (n is not YamlSequenceNode list)
            throw new UsageException($"{Where(path, n)}: placement must be a list of '- nodes: FIRST-LAST' / 'silo: INDEX' entries");
        var entries = new List<PlacementEntry>();
        foreach (var item in list.Children)
        {
            string where = $"{Where(path, item)}: placement[{entries.Count}]";
            if (item is not YamlMappingNode map)
                throw new UsageException($"{where}: expected a mapping with nodes and silo");
            (int First, int Last)? nodes = null;
            int? silo = null;
            foreach (var (k, v) in map.Children)
            {
                switch (Key(path, k))
                {
                    case "nodes":
                        var text = Scalar(path, v).Trim();
                        var m = NodeRange().Match(text);
                        if (!m.Success || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int first)
                            || !int.TryParse(m.Groups[2].Success ? m.Groups[2].Value : m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int last))
                            throw new UsageException($"{where}.nodes: '{text}' is not a node or a range FIRST-LAST");
                        nodes = (first, last);
                        break;
                    case "silo":
                        silo = (int)Integer(path, v, int.MaxValue);
                        break;
                    case var other:
                        throw new UsageException($"{Where(path, k)}: placement[{entries.Count}]: unknown key '{other}'; expected nodes and silo");
                }
            }
            if (nodes is null) throw new UsageException($"{where}: missing nodes");
            if (silo is null) throw new UsageException($"{where}: missing silo");
            entries.Add(new PlacementEntry(nodes.Value.First, nodes.Value.Last, silo.Value, where));
        }
        return entries;
    }

    private static PlacementMap Placement(List<PlacementEntry> entries, int nodes)
    {
        try
        {
            return new PlacementMap(entries, nodes);
        }
        catch (PlacementMapException e)
        {
            throw new UsageException(e.Message);
        }
    }

    /// <summary>Run time: the silos the map names must exist (<paramref name="silos"/> active in <paramref name="cluster"/>); a usage error (exit 2) naming the entry otherwise.</summary>
    public static void CheckPlacement(PlacementMap? placement, int silos, string cluster)
    {
        try
        {
            placement?.CheckSilos(silos);
        }
        catch (PlacementMapException e)
        {
            throw new UsageException($"{e.Message} ({cluster})");
        }
    }

    /// <summary>The map as a machine file's placement section (for config.yaml), or "" for none.</summary>
    public static string PlacementYaml(PlacementMap? placement)
    {
        if (placement is null || placement.Entries.Count == 0) return "";
        var sb = new StringBuilder("placement:\n");
        foreach (var e in placement.Entries)
            sb.Append(CultureInfo.InvariantCulture, $"  - nodes: {(e.First == e.Last ? $"{e.First}" : $"{e.First}-{e.Last}")}\n    silo: {e.Silo}\n");
        return sb.ToString();
    }
}
