namespace DistEmu.Client.Tests;

/// <summary>The real sample trace (tests/data under the folder holding DistEmu.sln).</summary>
internal static class SampleTrace
{
    public static string Path()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(System.IO.Path.Combine(dir.FullName, "DistEmu.sln"))) dir = dir.Parent;
        var path = System.IO.Path.Combine(dir!.FullName, "tests", "data", "threads4.perf.txt.gz");
        Assert.True(File.Exists(path), $"the sample trace is missing: {path}");
        return path;
    }
}
