using System.Globalization;

namespace DistEmu.Client;

/// <summary>
/// Output paths are tried before anything launches: a folder distemu cannot write into (/proc, a read-only mount, a
/// file in the way) is a usage error (exit 2) naming the option, not a failure after the run.
/// </summary>
internal static class OutputPaths
{
    /// <summary>A results folder: it will be created (with its parents) as a staging folder beside it, then renamed.</summary>
    public static void CheckFolder(string option, string fullPath)
    {
        var parent = Path.GetDirectoryName(fullPath.TrimEnd(Path.DirectorySeparatorChar));
        if (string.IsNullOrEmpty(parent)) return; // the file system's root: nothing above it to try
        var existing = NearestExisting(parent, option, fullPath);
        Probe(option, fullPath, existing);
    }

    /// <summary>A file opened as it is (its folder is not created): the folder must exist and take a new file.</summary>
    public static void CheckFile(string option, string path)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new UsageException($"{option} {path}: a folder has that name");
        var folder = Path.GetDirectoryName(full);
        if (string.IsNullOrEmpty(folder)) return;
        if (!Directory.Exists(folder))
            throw new UsageException($"{option} {path}: cannot write it: no such folder {folder}");
        Probe(option, path, folder);
    }

    private static string NearestExisting(string folder, string option, string shown)
    {
        for (var d = folder; !string.IsNullOrEmpty(d); d = Path.GetDirectoryName(d))
        {
            if (Directory.Exists(d)) return d;
            if (File.Exists(d)) throw new UsageException($"{option} {shown}: cannot write there: {d} is a file");
        }
        throw new UsageException($"{option} {shown}: cannot write there: no folder above it exists");
    }

    /// <summary>Creates and removes a folder in <paramref name="folder"/>: the one check that every file system answers truly.</summary>
    private static void Probe(string option, string shown, string folder)
    {
        var probe = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $".distemu-probe-{Environment.ProcessId}-{Guid.NewGuid():N}"));
        try
        {
            Directory.CreateDirectory(probe);
            Directory.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new UsageException($"{option} {shown}: cannot write there: {e.Message}");
        }
    }
}
