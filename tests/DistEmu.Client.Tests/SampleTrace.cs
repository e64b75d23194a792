namespace DistEmu.Client.Tests;

/// <summary>The real sample trace (tests/data under the folder holding DistEmu.sln).</summary>
internal static class SampleTrace
{
    public static string Path() => Path("threads4.perf.txt.gz");

    /// <summary>tests/data/<paramref name="name"/>.</summary>
    public static string Path(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(System.IO.Path.Combine(dir.FullName, "DistEmu.sln"))) dir = dir.Parent;
        var path = System.IO.Path.Combine(dir!.FullName, "tests", "data", name);
        Assert.True(File.Exists(path), $"the test trace is missing: {path}");
        return path;
    }
}
