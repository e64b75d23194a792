using System.CommandLine;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary><c>distemu silo</c>: the silo program's own options (<see cref="SiloCommandLine"/>), so deploy/ may start either.</summary>
internal static class SiloSubcommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var options = new SiloCommandLine();
        var command = new Command("silo", "run one silo of a cluster until SIGTERM (the same as dotnet run --project src/Silo)");
        options.AddTo(command);
        command.SetAction(p => SiloProgram.RunAsync(options.Read(p), stdout, stderr).GetAwaiter().GetResult());
        return command;
    }
}
