using System.Globalization;

namespace DistEmu.Client;

/// <summary>
/// A results folder (distemu run, distemu experiment) appears whole or not at all: its files are written into a
/// staging folder beside it, which is then renamed into place; a failure removes the staging folder.
/// </summary>
public static class ResultsFolder
{
    /// <summary>The folder as a full path; a usage error if it holds anything already, is a file or cannot be written (checked before any work).</summary>
    public static string Claim(string outDir)
    {
        outDir = Path.GetFullPath(outDir);
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new UsageException($"--out {outDir}: the folder exists and is not empty");
        if (File.Exists(outDir))
            throw new UsageException($"--out {outDir}: a file with that name exists");
        OutputPaths.CheckFolder("--out", outDir);
        return outDir;
    }

    /// <summary>Runs <paramref name="writeFiles"/> on a staging folder, then moves it to <paramref name="outDir"/>.</summary>
    public static void Write(string outDir, Action<string> writeFiles)
    {
        var tmp = outDir.TrimEnd(Path.DirectorySeparatorChar) + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        try
        {
            writeFiles(tmp);
            if (Directory.Exists(outDir)) Directory.Delete(outDir); // empty, checked by Claim
            var parent = Path.GetDirectoryName(outDir);
            if (!string.IsNullOrEmpty(parent)) Directory.CreateDirectory(parent);
            Directory.Move(tmp, outDir);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            throw;
        }
    }
}
