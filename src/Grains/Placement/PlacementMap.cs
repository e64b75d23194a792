namespace DistEmu.Grains.Placement;

/// <summary>A placement map entry that cannot be used: <see cref="Field"/> names it (file:line:col: placement[i].field).</summary>
public sealed class PlacementMapException(string field, string message) : Exception($"{field}: {message}")
{
    public string Field { get; } = field;
}

/// <summary>One line of a machine file's <c>placement:</c> section: emulated nodes First..Last live on silo <see cref="Silo"/>.</summary>
/// <param name="Where">Where the entry was written (e.g. "m.yaml:9:5: placement[1]"), for error messages.</param>
public sealed record PlacementEntry(int First, int Last, int Silo, string Where);

/// <summary>
/// A node → silo map from the machine file, like Graphite's process map: the grains of the listed nodes live on the
/// silo given (index among the cluster's silos sorted by address), instead of the even spread of
/// <see cref="NumaPlacementDirector.SiloIndex"/>. Nodes the map does not list keep the even spread.
/// </summary>
public sealed class PlacementMap
{
    public IReadOnlyList<PlacementEntry> Entries { get; }

    /// <summary>Checks the entries against the machine: every range inside 0..nodes-1, no node in two entries.</summary>
    public PlacementMap(IReadOnlyList<PlacementEntry> entries, int nodes)
    {
        var owner = new PlacementEntry?[nodes];
        foreach (var e in entries)
        {
            if (e.First < 0 || e.Last < e.First)
                throw new PlacementMapException(e.Where + ".nodes", $"{Range(e)} is not a range of nodes (FIRST-LAST, FIRST <= LAST)");
            if (e.Last >= nodes)
                throw new PlacementMapException(e.Where + ".nodes", $"{Range(e)} is past the machine's last node ({nodes - 1})");
            if (e.Silo < 0)
                throw new PlacementMapException(e.Where + ".silo", $"{e.Silo} is not a silo index (0, 1, …)");
            for (int n = e.First; n <= e.Last; n++)
            {
                if (owner[n] is { } other)
                    throw new PlacementMapException(e.Where + ".nodes", $"{Range(e)} overlaps {Name(other)} ({Range(other)}) at node {n}");
                owner[n] = e;
            }
        }
        Entries = entries;
        Nodes = nodes;
    }

    public int Nodes { get; }

    /// <summary>"placement[i]" without the file position.</summary>
    private static string Name(PlacementEntry e) => e.Where[(e.Where.LastIndexOf(": ", StringComparison.Ordinal) + 2)..];

    private static string Range(PlacementEntry e) => e.First == e.Last ? $"{e.First}" : $"{e.First}-{e.Last}";

    /// <summary>The silo index of each node, -1 where the map says nothing (the even spread decides).</summary>
    public int[] SiloOfNode()
    {
        var silos = Enumerable.Repeat(-1, Nodes).ToArray();
        foreach (var e in Entries)
            for (int n = e.First; n <= e.Last; n++) silos[n] = e.Silo;
        return silos;
    }

    /// <summary>At run time: every silo the map names must exist among the <paramref name="silos"/> of the cluster.</summary>
    public void CheckSilos(int silos)
    {
        foreach (var e in Entries)
            if (e.Silo >= silos)
                throw new PlacementMapException(e.Where + ".silo", $"silo {e.Silo}, but the cluster has {silos} silo{(silos == 1 ? "" : "s")} (indexes 0..{silos - 1})");
    }

    /// <summary>The silo index of <paramref name="node"/> of <paramref name="nodes"/> among <paramref name="silos"/>: the map's, else the even spread.</summary>
    /// <remarks>An index the cluster no longer has (a silo was lost mid-run) falls back to the even spread rather than failing the activation.</remarks>
    public static int SiloIndex(int[]? siloOfNode, int node, int nodes, int silos) =>
        siloOfNode is not null && node >= 0 && node < siloOfNode.Length && siloOfNode[node] >= 0 && siloOfNode[node] < silos
            ? siloOfNode[node]
            : NumaPlacementDirector.SiloIndex(node, nodes, silos);
}
