namespace DistEmu.Client.Tests;

/// <summary>
/// What the tests of the command line share: a fresh temporary folder per test (removed after it) and the command
/// line run in this process, its exit code and both outputs captured.
/// </summary>
public abstract class InProcessCliTests : IDisposable
{
    protected readonly string _tmp = Directory.CreateTempSubdirectory("distemu-test-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_tmp)) Directory.Delete(_tmp, true);
        GC.SuppressFinalize(this);
    }

    protected static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = DistEmu.Client.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    protected static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);
}
