using System.Globalization;

namespace DistEmu.Abstractions;

/// <summary>
/// How grains of one run are named. Grains of an emulated NUMA node carry it in their key ("nodeK"), so that the
/// NUMA placement can put them on that node's silo: CPUs "run/nodeK/cpuN", nodes "run/nodeK", VMAs
/// "run/mmN/nodeK/vmaM" (the node of the CPU whose task created the VMA).
/// </summary>
public static class GrainKeys
{
    public static string Cpu(string run, int node, int cpu) => $"{run}/node{node}/cpu{cpu}";
    public static string Mm(string run, int mm) => $"{run}/mm{mm}";
    public static string Vma(string run, int mm, int node, int vma) => $"{run}/mm{mm}/node{node}/vma{vma}";
    public static string Node(string run, int node) => $"{run}/node{node}";
    public static string Migrator(string run, int node) => $"{run}/node{node}/migrator";
    /// <summary>The time keeper of one emulated node's CPUs (the machine's own is keyed by the run id).</summary>
    public static string TimeKeeper(string run, int node) => $"{run}/node{node}/timekeeper";
    public static string RunOf(string key) => key[..key.IndexOf('/', StringComparison.Ordinal)];

    /// <summary>The emulated node a key names ("nodeK" after the run id), or -1 for a grain of no node (machine, mm, time keeper).</summary>
    public static int NodeOf(string key)
    {
        int slash = key.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0) return -1;
        foreach (var part in key[(slash + 1)..].Split('/'))
        {
            if (part.Length > 4 && part.StartsWith("node", StringComparison.Ordinal)
                && int.TryParse(part.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out int node))
                return node;
        }
        return -1;
    }
}
