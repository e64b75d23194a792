namespace DistEmu.Abstractions;

/// <summary>How grains of one run are named.</summary>
public static class GrainKeys
{
    public static string Cpu(string run, int cpu) => $"{run}/cpu{cpu}";
    public static string Mm(string run, int mm) => $"{run}/mm{mm}";
    public static string Vma(string run, int mm, int vma) => $"{run}/mm{mm}/vma{vma}";
    public static string Node(string run, int node) => $"{run}/node{node}";
    public static string RunOf(string key) => key[..key.IndexOf('/', StringComparison.Ordinal)];
}
