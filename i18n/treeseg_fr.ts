<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="fr" sourcelanguage="en">
  <context>
    <name>TreeSeg</name>
    <message>
      <location filename="../processing_provider/canopy_height.py" />
      <source>&lt;p&gt;Canopy height in metres from an RGB orthophoto with Meta's CHMv2 (a DPT head on the
DINOv3 ViT-L/16 SAT-493M backbone, Brandt et al. 2026), written as a Float32 GeoTIFF on the input's grid (NoData
where the input is invalid), styled with a height colour ramp.&lt;/p&gt;
&lt;p&gt;&lt;b&gt;Resolution&lt;/b&gt;: CHMv2 was trained at {gsd} m per pixel. The input is resampled to the
resolution given (default {gsd} m; 0 runs the model on the input's own pixels), and the heights
are resampled back onto the input's grid; the log says what was done.&lt;/p&gt;
&lt;p&gt;&lt;b&gt;Weights&lt;/b&gt; (gated): empty &lt;i&gt;Weights file&lt;/i&gt; uses Meta's decoder
&lt;tt&gt;{decoder}&lt;/tt&gt; from the weights folder (with the SAT-493M backbone), else the Hugging Face model
&lt;tt&gt;{repo}&lt;/tt&gt; from the weights folder or the cache (downloaded when allowed). A &lt;i&gt;Weights file&lt;/i&gt; is
Meta's decoder .pth (then the backbone comes from &lt;i&gt;Backbone weights&lt;/i&gt; or the weights folder) or a Hugging Face
model.safetensors with its config.json.&lt;/p&gt;</source>
      <translation>&lt;p&gt;Hauteur de canopée en mètres à partir d'une orthophoto RVB avec CHMv2 de Meta (une tête DPT sur le
backbone DINOv3 ViT-L/16 SAT-493M, Brandt et al. 2026), écrite en GeoTIFF Float32 sur la grille de l'entrée (NoData
là où l'entrée n'est pas valide), symbolisée par une rampe de couleurs des hauteurs.&lt;/p&gt;
&lt;p&gt;&lt;b&gt;Résolution&lt;/b&gt; : CHMv2 a été entraîné à {gsd} m par pixel. L'entrée est rééchantillonnée à la
résolution indiquée (par défaut {gsd} m ; 0 applique le modèle aux pixels de l'entrée), puis les hauteurs
sont rééchantillonnées sur la grille de l'entrée ; le journal indique ce qui a été fait.&lt;/p&gt;
&lt;p&gt;&lt;b&gt;Poids&lt;/b&gt; (accès restreint) : si &lt;i&gt;Fichier de poids&lt;/i&gt; est vide, le décodeur de Meta
&lt;tt&gt;{decoder}&lt;/tt&gt; est pris dans le dossier des poids (avec le backbone SAT-493M), sinon le modèle Hugging Face
&lt;tt&gt;{repo}&lt;/tt&gt; dans le dossier des poids ou le cache (téléchargé si autorisé). Un &lt;i&gt;Fichier de poids&lt;/i&gt; est
le .pth du décodeur de Meta (le backbone vient alors de &lt;i&gt;Poids du backbone&lt;/i&gt; ou du dossier des poids) ou un
model.safetensors Hugging Face accompagné de son config.json.&lt;/p&gt;</translation>
    </message>
    <message>
      <location filename="../processing_provider/canopy_height.py" />
      <source>The RGB orthophoto: any GDAL raster, or any QGIS raster layer (XYZ, WMS, WMTS, WCS...: fetched over the extent at the model resolution).</source>
      <translation>L'orthophoto RVB : tout raster GDAL, ou toute couche raster QGIS (XYZ, WMS, WMTS, WCS... : récupérée sur l'emprise à la résolution du modèle).</translation>
    </message>
    <message>
      <location filename="../processing_provider/canopy_height.py" />
      <source>Three bands in red, green, blue order. Empty: the first three bands.</source>
      <translation>Trois bandes dans l'ordre rouge, vert, bleu. Vide : les trois premières bandes.</translation>
    </message>
    <message>
      <location filename="../processing_provider/canopy_height.py" />
      <source>Canopy Height</source>
      <translation>Hauteur de canopée</translation>
    </message>
    <message>
      <location filename="../processing_provider/canopy_height.py" />
      <source>canopy,height,chm,chmv2,trees,forest,dinov3,dpt,depth</source>
      <translation>canopée,hauteur,mnh,chm,chmv2,arbres,forêt,dinov3,dpt,profondeur,canopy,height</translation>
    </message>
    <message>
      <location filename="../processing_provider/canopy_height.py" />
      <location filename="../processing_provider/worker_algorithm.py" />
      <source>The input orthophoto could not be opened as a raster layer.</source>
      <translation>L'orthophoto en entrée n'a pas pu être ouverte comme couche raster.</translation>
    </message>
    <message>
      <location filename="../processing_provider/canopy_height.py" />
      <source>canopy height</source>
      <translation>hauteur de canopée</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>The orthophoto to classify: any GDAL raster (GeoTIFF, VRT, JPEG2000...) or any QGIS raster layer (XYZ, WMS, WMTS, WCS...: fetched over the extent at the working resolution).</source>
      <translation>L'orthophoto à classer : tout raster GDAL (GeoTIFF, VRT, JPEG2000...) ou toute couche raster QGIS (XYZ, WMS, WMTS, WCS... : récupérée sur l'emprise à la résolution de travail).</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <location filename="../processing_provider/segment_trees.py" />
      <source>Three bands in red, green, blue order. Empty: the first three bands, or the single band repeated for a one-band raster.</source>
      <translation>Trois bandes dans l'ordre rouge, vert, bleu. Vide : les trois premières bandes, ou la bande unique répétée pour un raster à une bande.</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>&lt;p&gt;Classifies an orthophoto into the classes you show it with a few examples
(conifers and broadleaves, live and dead crowns, trees, hedges and lawn...). A linear classifier (multinomial
logistic regression, L2-regularised, classes weighted equally) is fitted on the DINOv3 patch features under
the examples and applied to every patch; no training of the network, no scikit-learn.&lt;/p&gt;

&lt;h3&gt;How to draw examples&lt;/h3&gt;
&lt;ol&gt;
&lt;li&gt;&lt;i&gt;Layer &gt; Create Layer &gt; New Temporary Scratch Layer&lt;/i&gt;: geometry type Polygon (or Point), any CRS, and
a text field named &lt;i&gt;class&lt;/i&gt;.&lt;/li&gt;
&lt;li&gt;Toggle editing and draw polygons inside areas that are clearly one class (not across its borders); type
each polygon's class name. Draw at least 3 polygons per class, spread over the image, with roughly as much area
per class. Points take the patch under each point.&lt;/li&gt;
&lt;li&gt;Choose the layer as &lt;i&gt;Examples&lt;/i&gt; and &lt;i&gt;class&lt;/i&gt; as &lt;i&gt;Class field&lt;/i&gt;. Tick &lt;i&gt;Selected features
only&lt;/i&gt; to fit on a selection.&lt;/li&gt;
&lt;/ol&gt;

&lt;h3&gt;Accuracy&lt;/h3&gt;
&lt;p&gt;With &lt;i&gt;Cross-validate by example&lt;/i&gt;, whole example features are left out in turn (grouped k-fold when
there are many) and predicted by a classifier fitted on the others, never single pixels, whose neighbours would
inflate the score. The log and the statistics report give the overall accuracy, per-class precision, recall
and F1, the confusion matrix and the examples per class, with a warning when a class has fewer than 3 examples
or the classes are far from balanced. ACCURACY returns the overall accuracy in percent.&lt;/p&gt;

&lt;h3&gt;Outputs&lt;/h3&gt;
&lt;p&gt;&lt;i&gt;Classes&lt;/i&gt;: a Byte GeoTIFF on the input's grid, class numbers 1..N (0 = NoData), paletted with the class
names. With a single class it holds the similarity to the examples instead (0-100: find more like these).
&lt;i&gt;Confidence&lt;/i&gt;: the winning class's probability (0-100). Optional: class polygons, and with &lt;i&gt;Tree
classes&lt;/i&gt; the tree canopy mask and the tree crowns, the statistics report (.json, .csv or .html).&lt;/p&gt;

&lt;h3&gt;Fit once, apply everywhere&lt;/h3&gt;
&lt;p&gt;&lt;i&gt;Classifier (save)&lt;/i&gt; keeps the fitted classifier in a .tscc file (no pickle); &lt;i&gt;Classifier (apply)&lt;/i&gt;
classifies another raster with it, without examples (in batch, in a model, or with the batch command). A
classifier from other weights, another patch stride or other bands is refused before encoding.&lt;/p&gt;
</source>
      <translation>&lt;p&gt;Classe une orthophoto dans les classes que vous lui montrez par quelques exemples (conifères et
feuillus, houppiers vivants et morts, arbres, haies et pelouse...). Un classifieur linéaire (régression logistique
multinomiale, régularisée L2, classes de poids égal) est ajusté sur les descripteurs de patchs DINOv3 sous les
exemples et appliqué à chaque patch ; aucun entraînement du réseau, pas de scikit-learn.&lt;/p&gt;

&lt;h3&gt;Comment dessiner les exemples&lt;/h3&gt;
&lt;ol&gt;
&lt;li&gt;&lt;i&gt;Couche &gt; Créer une couche &gt; Nouvelle couche temporaire en mémoire&lt;/i&gt; : type de géométrie Polygone (ou
Point), n'importe quel SCR, et un champ texte nommé &lt;i&gt;class&lt;/i&gt;.&lt;/li&gt;
&lt;li&gt;Basculez en mode édition et dessinez des polygones à l'intérieur de zones qui sont clairement d'une seule
classe (sans déborder sur leurs limites) ; saisissez le nom de classe de chaque polygone. Dessinez au moins 3
polygones par classe, répartis sur l'image, avec à peu près autant de surface par classe. Les points prennent le
patch sous chaque point.&lt;/li&gt;
&lt;li&gt;Choisissez la couche comme &lt;i&gt;Exemples&lt;/i&gt; et &lt;i&gt;class&lt;/i&gt; comme &lt;i&gt;Champ de classe&lt;/i&gt;. Cochez &lt;i&gt;Entités
sélectionnées uniquement&lt;/i&gt; pour ajuster sur une sélection.&lt;/li&gt;
&lt;/ol&gt;

&lt;h3&gt;Exactitude&lt;/h3&gt;
&lt;p&gt;Avec &lt;i&gt;Validation croisée par exemple&lt;/i&gt;, des entités d'exemple entières sont écartées tour à tour (k-fold
groupé quand elles sont nombreuses) et prédites par un classifieur ajusté sur les autres, jamais des pixels
isolés, dont les voisins gonfleraient le score. Le journal et le rapport de statistiques donnent l'exactitude
globale, la précision, le rappel et le F1 par classe, la matrice de confusion et les exemples par classe, avec un
avertissement quand une classe a moins de 3 exemples ou que les classes sont très déséquilibrées. ACCURACY
renvoie l'exactitude globale en pourcentage.&lt;/p&gt;

&lt;h3&gt;Sorties&lt;/h3&gt;
&lt;p&gt;&lt;i&gt;Classes&lt;/i&gt; : un GeoTIFF Byte sur la grille de l'entrée, numéros de classe 1..N (0 = NoData), en palette
avec les noms des classes. Avec une seule classe, il contient à la place la similarité avec les exemples (0-100 :
trouver d'autres zones semblables). &lt;i&gt;Confiance&lt;/i&gt; : la probabilité de la classe retenue (0-100). En option :
les polygones des classes et, avec des &lt;i&gt;Classes d'arbres&lt;/i&gt;, le masque de canopée et les houppiers, le rapport
de statistiques (.json, .csv ou .html).&lt;/p&gt;

&lt;h3&gt;Ajuster une fois, appliquer partout&lt;/h3&gt;
&lt;p&gt;&lt;i&gt;Classifieur (enregistrer)&lt;/i&gt; conserve le classifieur ajusté dans un fichier .tscc (sans pickle) ;
&lt;i&gt;Classifieur (appliquer)&lt;/i&gt; classe un autre raster avec lui, sans exemples (en lot, dans un modèle ou avec la
commande de traitement par lot). Un classifieur issu d'autres poids, d'un autre pas de patch ou d'autres bandes
est refusé avant l'encodage.&lt;/p&gt;
</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>Classify from Examples</source>
      <translation>Classer à partir d'exemples</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>classify,classification,supervised,examples,training,dinov3,logistic regression,similarity,trees,species,orthophoto</source>
      <translation>classer,classification,supervisée,exemples,apprentissage,dinov3,régression logistique,similarité,arbres,essences,orthophoto,classify,supervised,examples,training,logistic regression,similarity,species</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>Cross-validated accuracy (%)</source>
      <translation>Exactitude en validation croisée (%)</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>The examples layer '{layer}' holds lines. Classify from Examples takes polygons (the patches under them) or points (the patch under each): choose such a layer.</source>
      <translation>La couche d'exemples « {layer} » contient des lignes. Classer à partir d'exemples prend des polygones (les patchs qu'ils recouvrent) ou des points (le patch sous chacun) : choisissez une telle couche.</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>The examples have no field '{field}' (their fields: {fields}). Choose the field that names each example's class.</source>
      <translation>Les exemples n'ont pas de champ « {field} » (leurs champs : {fields}). Choisissez le champ qui nomme la classe de chaque exemple.</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <location filename="../processing_provider/segment_trees.py" />
      <source>crowns</source>
      <translation>houppiers</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>class polygons</source>
      <translation>polygones des classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <location filename="../processing_provider/segment_trees.py" />
      <source>trees</source>
      <translation>arbres</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>confidence</source>
      <translation>confiance</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>similarity</source>
      <translation>similarité</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>classes</source>
      <translation>classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>Classify from Examples report</source>
      <translation>Rapport de Classer à partir d'exemples</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>The examples layer has no CRS, so they cannot be placed on the orthophoto. Set its CRS (Layer Properties &gt; Source) to the one its coordinates are in.</source>
      <translation>La couche d'exemples n'a pas de SCR, ils ne peuvent donc pas être placés sur l'orthophoto. Définissez son SCR (Propriétés de la couche &gt; Source) sur celui de ses coordonnées.</translation>
    </message>
    <message>
      <location filename="../processing_provider/classify_examples.py" />
      <source>The class field '{field}' holds decimal numbers or other values that are no class names. Choose a text or integer field.</source>
      <translation>Le champ de classe « {field} » contient des nombres décimaux ou d'autres valeurs qui ne sont pas des noms de classe. Choisissez un champ texte ou entier.</translation>
    </message>
    <message>
      <location filename="../processing_provider/dependencies.py" />
      <source>Install them with TreeSeg's own installer: restart the QGIS desktop and click 'Install...' in the TreeSeg message bar; it puts them into a folder of the plugin's and keeps QGIS's numpy as it is. Never replace or upgrade the numpy that QGIS came with. For other routes (Debian's packages, an offline wheel folder) see the TreeSeg README, section 'Installing the dependencies'.</source>
      <translation>Installez-les avec l'installateur de TreeSeg : redémarrez QGIS et cliquez sur « Installer… » dans la barre de messages TreeSeg ; il les place dans un dossier propre au plugin et conserve le numpy de QGIS tel quel. Ne remplacez ni ne mettez jamais à jour le numpy fourni avec QGIS. Pour les autres méthodes (paquets Debian, dossier de wheels hors ligne), voir le README de TreeSeg, section « Installing the dependencies ».</translation>
    </message>
    <message>
      <location filename="../processing_provider/dependencies.py" />
      <source>{package} is not installed</source>
      <translation>{package} n'est pas installé</translation>
    </message>
    <message>
      <location filename="../processing_provider/dependencies.py" />
      <source>{package} {installed} is older than {minimum}</source>
      <translation>{package} {installed} est antérieur à {minimum}</translation>
    </message>
    <message>
      <location filename="../processing_provider/dependencies.py" />
      <source>TreeSeg cannot run: these Python packages are missing or too old: {listed}.</source>
      <translation>TreeSeg ne peut pas s'exécuter : ces paquets Python sont absents ou trop anciens : {listed}.</translation>
    </message>
    <message>
      <location filename="../processing_provider/diagnostics.py" />
      <source>&lt;p&gt;Lists what a bug report about TreeSeg needs: the TreeSeg, QGIS, Qt, PyQt, Python, numpy, GDAL and PyTorch versions, CUDA and MPS, the CPU and its vector extensions, the BLAS and OpenMP libraries loaded in this process, the dependency and weights folders and the weights found there.&lt;/p&gt;&lt;p&gt;The report is returned as REPORT, written to the log and, when a file is given, saved as text (or as HTML for a .html file). It holds no secret: the Hugging Face token is never read, only whether one is configured. Paste it into the bug report.&lt;/p&gt;</source>
      <translation>&lt;p&gt;Rassemble ce qu'un rapport de bogue sur TreeSeg doit contenir : les versions de TreeSeg, QGIS, Qt, PyQt, Python, numpy, GDAL et PyTorch, CUDA et MPS, le processeur et ses extensions vectorielles, les bibliothèques BLAS et OpenMP chargées dans ce processus, les dossiers des dépendances et des poids et les poids qui s'y trouvent.&lt;/p&gt;&lt;p&gt;Le rapport est renvoyé dans REPORT, écrit dans le journal et, si un fichier est indiqué, enregistré en texte (ou en HTML pour un fichier .html). Il ne contient aucun secret : le jeton Hugging Face n'est jamais lu, seule sa présence est indiquée. Collez-le dans le rapport de bogue.&lt;/p&gt;</translation>
    </message>
    <message>
      <location filename="../processing_provider/diagnostics.py" />
      <source>Diagnostics</source>
      <translation>Diagnostic</translation>
    </message>
    <message>
      <location filename="../processing_provider/diagnostics.py" />
      <source>Troubleshooting</source>
      <translation>Dépannage</translation>
    </message>
    <message>
      <location filename="../processing_provider/diagnostics.py" />
      <source>diagnostics,bug,report,versions,troubleshooting,cuda,torch</source>
      <translation>diagnostic,bogue,rapport,versions,dépannage,cuda,torch,diagnostics,bug</translation>
    </message>
    <message>
      <location filename="../processing_provider/diagnostics.py" />
      <source>Diagnostics report</source>
      <translation>Rapport de diagnostic</translation>
    </message>
    <message>
      <location filename="../processing_provider/diagnostics.py" />
      <source>Text (*.txt);;HTML (*.html)</source>
      <translation>Texte (*.txt);;HTML (*.html)</translation>
    </message>
    <message>
      <location filename="../processing_provider/diagnostics.py" />
      <source>Also save the report here: HTML for a .html file, plain text otherwise.</source>
      <translation>Enregistrer aussi le rapport ici : en HTML pour un fichier .html, sinon en texte brut.</translation>
    </message>
    <message>
      <location filename="../processing_provider/feedback.py" />
      <source>no message</source>
      <translation>aucun message</translation>
    </message>
    <message>
      <location filename="../processing_provider/feedback.py" />
      <source>{algorithm} stopped on an unexpected error ({type_name}: {detail}). Nothing was written. This is a bug in TreeSeg, not a problem with your data or settings: please report it, with the details from the '{tag}' tab of the Log Messages panel (View &gt; Panels &gt; Log Messages).</source>
      <translation>{algorithm} s'est arrêté sur une erreur inattendue ({type_name} : {detail}). Rien n'a été écrit. Il s'agit d'un bogue de TreeSeg, pas d'un problème de vos données ou de vos réglages : signalez-le en joignant les détails de l'onglet « {tag} » du panneau Journal des messages (Vue &gt; Panneaux &gt; Journal des messages).</translation>
    </message>
    <message>
      <location filename="../processing_provider/fit_cluster_model.py" />
      <source>Three band numbers in red, green, blue order, e.g. 3,2,1, or one band (repeated to RGB). Empty: the first three bands, or the single band of a one-band raster.</source>
      <translation>Trois numéros de bande dans l'ordre rouge, vert, bleu, par ex. 3,2,1, ou une seule bande (répétée en RVB). Vide : les trois premières bandes, ou la bande unique d'un raster à une bande.</translation>
    </message>
    <message>
      <location filename="../processing_provider/fit_cluster_model.py" />
      <source>&lt;p&gt;Fits one cluster model on patch features sampled across several orthophotos and saves it as a .tscm file. Segment Trees then applies it to each raster (its &lt;i&gt;Cluster model (apply)&lt;/i&gt; input, in the Toolbox, in batch or in a model), so every output has the same clusters, label numbers and colours.&lt;/p&gt;&lt;p&gt;The rasters must have the same bands and band types. The maximum k-means samples are split across the rasters in proportion to their valid patches; 16-bit and float bands are stretched between the 2nd and 98th percentiles of all rasters together. K is chosen as in Segment Trees (the elbow of the WCSS curve, logged per K). See docs/cluster-model.md.&lt;/p&gt;</source>
      <translation>&lt;p&gt;Ajuste un seul modèle de classes sur des descripteurs de patchs échantillonnés dans plusieurs orthophotos et l'enregistre dans un fichier .tscm. Segmenter les arbres l'applique ensuite à chaque raster (son entrée &lt;i&gt;Modèle de classes (appliquer)&lt;/i&gt;, dans la boîte à outils, en lot ou dans un modèle), si bien que toutes les sorties ont les mêmes classes, numéros d'étiquette et couleurs.&lt;/p&gt;&lt;p&gt;Les rasters doivent avoir les mêmes bandes et les mêmes types de bande. Le nombre maximal d'échantillons k-means est réparti entre les rasters au prorata de leurs patchs valides ; les bandes 16 bits et flottantes sont étirées entre les 2e et 98e centiles de l'ensemble des rasters. K est choisi comme dans Segmenter les arbres (le coude de la courbe WCSS, journalisée pour chaque K). Voir docs/cluster-model.md.&lt;/p&gt;</translation>
    </message>
    <message>
      <location filename="../processing_provider/fit_cluster_model.py" />
      <source>Fit Cluster Model</source>
      <translation>Ajuster un modèle de classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/fit_cluster_model.py" />
      <source>trees,forest,dinov3,k-means,clustering,model,batch,mosaic,consistent</source>
      <translation>arbres,forêt,dinov3,k-means,classification,modèle,lot,mosaïque,cohérent,clustering,batch</translation>
    </message>
    <message>
      <location filename="../processing_provider/fit_cluster_model.py" />
      <location filename="../processing_provider/segment_trees.py" />
      <source>Chosen number of clusters</source>
      <translation>Nombre de classes retenu</translation>
    </message>
    <message>
      <location filename="../processing_provider/fit_cluster_model.py" />
      <source>No input rasters given. Choose one or more orthophotos.</source>
      <translation>Aucun raster en entrée. Choisissez une ou plusieurs orthophotos.</translation>
    </message>
    <message>
      <location filename="../processing_provider/help_text.py" />
      <source>&lt;p&gt;Segments an orthophoto into K clusters of similar texture and colour (tree crowns,
shadows, grass, bare soil...) with Meta's DINOv3 vision transformer and k-means, without training data.&lt;/p&gt;

&lt;h3&gt;How it works&lt;/h3&gt;
&lt;ol&gt;
&lt;li&gt;The orthophoto is read in overlapping tiles (reflection-padded at the edges); only each tile's centre
is kept, so there are no seams. NoData, alpha and mask pixels are ignored. Byte bands are used as they are;
16-bit and float bands are stretched per band between their 2nd and 98th percentiles, sampled in the
extent (or the whole raster).&lt;/li&gt;
&lt;li&gt;The DINOv3 backbone turns every 16x16-pixel patch (every 8 or 4 pixels with a smaller patch stride)
into a feature vector, normalised with the mean and standard deviation that belong to the weights
(ImageNet for LVD-1689M, the satellite statistics for SAT-493M). Each patch feature is scaled to unit length,
so k-means compares directions (cosine similarity).&lt;/li&gt;
&lt;li&gt;k-means (k-means++ initialisation, several seeded restarts) is fitted on at most &lt;i&gt;Maximum k-means
samples&lt;/i&gt; valid patch features drawn over the whole extent (or raster), for every K from &lt;i&gt;Minimum K&lt;/i&gt; to
&lt;i&gt;Maximum K&lt;/i&gt;. Its within-cluster sum of squares (WCSS) is logged for each K.&lt;/li&gt;
&lt;li&gt;With K = 0 the number of clusters is chosen automatically: &lt;b&gt;the smallest K whose step to K+1 lowers
the WCSS by less than the elbow threshold (in percent); the maximum K when no step is that small.&lt;/b&gt;&lt;/li&gt;
&lt;li&gt;Every patch gets its distances to the K centroids; these are interpolated to the pixels before each
pixel takes the nearest centroid, so boundaries follow the image rather than 16-pixel blocks.&lt;/li&gt;
&lt;/ol&gt;

&lt;h3&gt;Web maps&lt;/h3&gt;
&lt;p&gt;The orthophoto may be any QGIS raster layer: an XYZ basemap, WMS, WMTS, WCS, ArcGIS or PostGIS layer is
fetched through QGIS (its authentication and proxy apply) over the &lt;i&gt;Extent&lt;/i&gt; (empty: the map canvas
extent) at the &lt;i&gt;Working resolution&lt;/i&gt;, which it then needs, into a temporary GeoTIFF removed after the run.
See docs/web-layers.md.&lt;/p&gt;

&lt;h3&gt;Output&lt;/h3&gt;
&lt;p&gt;A Byte GeoTIFF with exactly the input's (or the extent's) grid and CRS: labels 1..K, 1 being the
cluster with the most patches in the fit sample (not always the most pixels), 0 = NoData, with a colour
table and a .qml style beside it. Optional: a statistics report (.json, .csv or .html with an elbow chart)
and cluster polygons. CHOSEN_K returns the K used.&lt;/p&gt;

&lt;h3&gt;Which clusters are trees&lt;/h3&gt;
&lt;p&gt;While the labels are written, each cluster's mean colour, excess green (ExG), VARI, NDVI (with a
&lt;i&gt;Near-infrared band&lt;/i&gt;) and canopy height (mean, median, 90th percentile, with a &lt;i&gt;Canopy height
raster&lt;/i&gt; in metres, resampled to the orthophoto's grid) are measured. The first rule with evidence
decides: the &lt;i&gt;Tree clusters&lt;/i&gt; you name; else a median height of at least &lt;i&gt;Minimum tree height&lt;/i&gt;; else
NDVI of at least 0.4; else ExG of at least 0.05 with VARI of at least 0. The log gives the numbers. Tree
clusters are named "Cluster N: trees" and drawn in greens. Optional outputs: the &lt;i&gt;Tree canopy mask&lt;/i&gt;
(1 = trees, 0 = not, 255 = NoData) and the &lt;i&gt;Tree crowns&lt;/i&gt;, split by a watershed from treetops of the canopy
height (or of the distance to the canopy edge), crowns under &lt;i&gt;Minimum crown area&lt;/i&gt; left out.&lt;/p&gt;

&lt;h3&gt;Cluster models&lt;/h3&gt;
&lt;p&gt;&lt;i&gt;Cluster model (save)&lt;/i&gt; keeps the clusters this run fits in a .tscm file; &lt;i&gt;Cluster model (apply)&lt;/i&gt;
labels with a saved model instead of fitting (its band stretch, centroids and colours; the K settings are
not used), so several rasters share label numbers and colours. Fit Cluster Model fits one model on several
rasters. A model from other weights, another patch stride or other bands is refused before encoding.&lt;/p&gt;

&lt;h3&gt;Device&lt;/h3&gt;
&lt;p&gt;&lt;i&gt;auto&lt;/i&gt; uses a CUDA GPU, then Apple MPS, then the CPU. A device you choose is honoured or refused:
&lt;i&gt;cuda&lt;/i&gt; stops with a message when PyTorch sees no CUDA GPU (a CPU-only PyTorch, a missing driver), and
&lt;i&gt;mps&lt;/i&gt; when MPS is not available. TreeSeg never falls back to the CPU silently, because on the CPU a run
takes many times longer; choose &lt;i&gt;auto&lt;/i&gt; to get the fall-back.&lt;/p&gt;

&lt;h3&gt;When a run stops&lt;/h3&gt;
&lt;p&gt;Every problem stops the run with one message that says what is wrong and what to do; nothing is
written. Outputs are written to hidden &lt;i&gt;.treeseg-*&lt;/i&gt; folders beside them and moved into place only when
the whole run succeeded, so a failed or canceled run leaves an earlier result untouched. The messages and
their fixes are listed in the TreeSeg documentation (docs/troubleshooting-run.md).&lt;/p&gt;

&lt;h3&gt;Weights&lt;/h3&gt;
&lt;p&gt;DINOv3 weights are gated by Meta. Accept the licence on Hugging Face (for example
facebook/dinov3-vits16-pretrain-lvd1689m) or through Meta's download form, then either give the
downloaded file as &lt;i&gt;Weights file&lt;/i&gt; or keep it in the Hugging Face cache. Downloads happen only when
&lt;i&gt;Allow downloading weights&lt;/i&gt; is on. Without weights the algorithm stops with a message saying where it
looked; it never uses random weights. In QGIS, &lt;i&gt;Raster &gt; Tree Segmentation &gt; Weights…&lt;/i&gt; shows which
models are present and imports downloaded files; &lt;i&gt;Settings…&lt;/i&gt; holds the weights folder, the Hugging Face
token (kept in QGIS's authentication database) and the default device and precision.&lt;/p&gt;
</source>
      <translation>&lt;p&gt;Segmente une orthophoto en K classes de texture et de couleur semblables (houppiers, ombres,
herbe, sol nu...) avec le vision transformer DINOv3 de Meta et k-means, sans données d'entraînement.&lt;/p&gt;

&lt;h3&gt;Fonctionnement&lt;/h3&gt;
&lt;ol&gt;
&lt;li&gt;L'orthophoto est lue par tuiles qui se chevauchent (complétées par réflexion aux bords) ; seul le centre de
chaque tuile est conservé, il n'y a donc pas de raccords visibles. Les pixels NoData, alpha et de masque sont
ignorés. Les bandes Byte sont utilisées telles quelles ; les bandes 16 bits et flottantes sont étirées bande par
bande entre leurs 2e et 98e centiles, échantillonnés dans l'emprise (ou le raster entier).&lt;/li&gt;
&lt;li&gt;Le backbone DINOv3 transforme chaque patch de 16x16 pixels (tous les 8 ou 4 pixels avec un pas de patch plus
petit) en un vecteur de descripteurs, normalisé avec la moyenne et l'écart type propres aux poids
(ImageNet pour LVD-1689M, les statistiques satellitaires pour SAT-493M). Chaque descripteur est ramené à une
longueur unité, de sorte que k-means compare des directions (similarité cosinus).&lt;/li&gt;
&lt;li&gt;k-means (initialisation k-means++, plusieurs redémarrages à graine fixée) est ajusté sur au plus
&lt;i&gt;Nombre maximal d'échantillons k-means&lt;/i&gt; descripteurs de patchs valides tirés sur toute l'emprise (ou tout le
raster), pour chaque K de &lt;i&gt;K minimal&lt;/i&gt; à &lt;i&gt;K maximal&lt;/i&gt;. Sa somme des carrés intra-classe (WCSS) est
journalisée pour chaque K.&lt;/li&gt;
&lt;li&gt;Avec K = 0, le nombre de classes est choisi automatiquement : &lt;b&gt;le plus petit K dont le passage à K+1
réduit la WCSS de moins que le seuil du coude (en pourcentage) ; le K maximal si aucun passage n'est aussi
faible.&lt;/b&gt;&lt;/li&gt;
&lt;li&gt;Chaque patch reçoit ses distances aux K centroïdes ; elles sont interpolées aux pixels avant que chaque
pixel ne prenne le centroïde le plus proche, si bien que les limites suivent l'image plutôt que des blocs de
16 pixels.&lt;/li&gt;
&lt;/ol&gt;

&lt;h3&gt;Cartes web&lt;/h3&gt;
&lt;p&gt;L'orthophoto peut être n'importe quelle couche raster QGIS : un fond de carte XYZ, une couche WMS, WMTS,
WCS, ArcGIS ou PostGIS est récupérée par QGIS (son authentification et son proxy s'appliquent) sur
l'&lt;i&gt;Emprise&lt;/i&gt; (vide : l'emprise du canevas de carte) à la &lt;i&gt;Résolution de travail&lt;/i&gt;, alors nécessaire,
dans un GeoTIFF temporaire supprimé après le traitement. Voir docs/web-layers.md.&lt;/p&gt;

&lt;h3&gt;Sortie&lt;/h3&gt;
&lt;p&gt;Un GeoTIFF Byte avec exactement la grille et le SCR de l'entrée (ou de l'emprise) : étiquettes 1..K, 1 étant
la classe qui compte le plus de patchs dans l'échantillon d'ajustement (pas toujours le plus de pixels),
0 = NoData, avec une table de couleurs et un style .qml à côté. En option : un rapport de statistiques (.json,
.csv ou .html avec un graphique du coude) et les polygones des classes. CHOSEN_K renvoie le K utilisé.&lt;/p&gt;

&lt;h3&gt;Quelles classes sont des arbres&lt;/h3&gt;
&lt;p&gt;Pendant l'écriture des étiquettes, on mesure pour chaque classe la couleur moyenne, l'excès de vert (ExG),
le VARI, le NDVI (avec une &lt;i&gt;Bande proche infrarouge&lt;/i&gt;) et la hauteur de canopée (moyenne, médiane,
90e centile, avec un &lt;i&gt;Raster de hauteur de canopée&lt;/i&gt; en mètres, rééchantillonné sur la grille de
l'orthophoto). La première règle qui dispose d'indices décide : les &lt;i&gt;Classes d'arbres&lt;/i&gt; que vous indiquez ;
sinon une hauteur médiane d'au moins &lt;i&gt;Hauteur minimale des arbres&lt;/i&gt; ; sinon un NDVI d'au moins 0,4 ; sinon
un ExG d'au moins 0,05 avec un VARI d'au moins 0. Le journal donne les valeurs. Les classes d'arbres sont
nommées « Cluster N: trees » et dessinées en vert. Sorties facultatives : le &lt;i&gt;Masque de canopée&lt;/i&gt;
(1 = arbres, 0 = non, 255 = NoData) et les &lt;i&gt;Houppiers&lt;/i&gt;, séparés par une ligne de partage des eaux depuis les
sommets des arbres de la hauteur de canopée (ou de la distance au bord de la canopée), les houppiers plus petits
que &lt;i&gt;Surface minimale des houppiers&lt;/i&gt; étant écartés.&lt;/p&gt;

&lt;h3&gt;Modèles de classes&lt;/h3&gt;
&lt;p&gt;&lt;i&gt;Modèle de classes (enregistrer)&lt;/i&gt; conserve les classes ajustées par ce traitement dans un fichier .tscm ;
&lt;i&gt;Modèle de classes (appliquer)&lt;/i&gt; étiquette avec un modèle enregistré au lieu d'ajuster (son étirement des
bandes, ses centroïdes et ses couleurs ; les paramètres de K ne sont pas utilisés), si bien que plusieurs rasters
partagent les mêmes numéros d'étiquette et couleurs. Ajuster un modèle de classes ajuste un seul modèle sur
plusieurs rasters. Un modèle issu d'autres poids, d'un autre pas de patch ou d'autres bandes est refusé avant
l'encodage.&lt;/p&gt;

&lt;h3&gt;Périphérique&lt;/h3&gt;
&lt;p&gt;&lt;i&gt;auto&lt;/i&gt; utilise un GPU CUDA, puis Apple MPS, puis le processeur. Un périphérique choisi est respecté ou
refusé : &lt;i&gt;cuda&lt;/i&gt; s'arrête avec un message quand PyTorch ne voit aucun GPU CUDA (un PyTorch sans CUDA, un
pilote absent), et &lt;i&gt;mps&lt;/i&gt; quand MPS n'est pas disponible. TreeSeg ne se replie jamais en silence sur le
processeur, car un traitement y prend bien plus de temps ; choisissez &lt;i&gt;auto&lt;/i&gt; pour obtenir ce repli.&lt;/p&gt;

&lt;h3&gt;Quand un traitement s'arrête&lt;/h3&gt;
&lt;p&gt;Tout problème arrête le traitement avec un seul message qui dit ce qui ne va pas et quoi faire ; rien n'est
écrit. Les sorties sont écrites dans des dossiers cachés &lt;i&gt;.treeseg-*&lt;/i&gt; à côté d'elles et mises en place
seulement quand tout le traitement a réussi, si bien qu'un traitement échoué ou annulé laisse intact un résultat
antérieur. Les messages et leurs solutions sont listés dans la documentation de TreeSeg
(docs/troubleshooting-run.md).&lt;/p&gt;

&lt;h3&gt;Poids&lt;/h3&gt;
&lt;p&gt;Les poids DINOv3 sont soumis à l'accord de licence de Meta. Acceptez la licence sur Hugging Face (par exemple
facebook/dinov3-vits16-pretrain-lvd1689m) ou via le formulaire de téléchargement de Meta, puis indiquez le
fichier téléchargé comme &lt;i&gt;Fichier de poids&lt;/i&gt; ou gardez-le dans le cache Hugging Face. Les téléchargements
n'ont lieu que si &lt;i&gt;Autoriser le téléchargement des poids&lt;/i&gt; est coché. Sans poids, l'algorithme s'arrête avec
un message indiquant où il a cherché ; il n'utilise jamais de poids aléatoires. Dans QGIS, &lt;i&gt;Raster &gt;
Segmentation des arbres &gt; Poids…&lt;/i&gt; montre quels modèles sont présents et importe les fichiers téléchargés ;
&lt;i&gt;Paramètres…&lt;/i&gt; contient le dossier des poids, le jeton Hugging Face (conservé dans la base
d'authentification de QGIS) et le périphérique et la précision par défaut.&lt;/p&gt;
</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source> Headless (qgis_process) and in text inputs: BANDS=3,2,1, or the parameter repeated: BANDS=3 BANDS=2 BANDS=1.</source>
      <translation> Sans interface (qgis_process) et dans les champs texte : BANDS=3,2,1, ou le paramètre répété : BANDS=3 BANDS=2 BANDS=1.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Orthophoto</source>
      <translation>Orthophoto</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Bands (red, green, blue)</source>
      <translation>Bandes (rouge, vert, bleu)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Process only this part of the orthophoto, snapped outwards to the input's pixel grid. A layer that is not a file (XYZ, WMS, WMTS, WCS...) is fetched over this extent at the working resolution; empty: the map canvas extent in the desktop (docs/web-layers.md).</source>
      <translation>Ne traiter que cette partie de l'orthophoto, étendue vers l'extérieur jusqu'à la grille de pixels de l'entrée. Une couche qui n'est pas un fichier (XYZ, WMS, WMTS, WCS...) est récupérée sur cette emprise à la résolution de travail ; vide : l'emprise du canevas de carte dans QGIS Desktop (docs/web-layers.md).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Extent</source>
      <translation>Emprise</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Only for inputs that are not files (XYZ, WMS, WMTS, WCS...): they are fetched over this extent at the working resolution (empty: the map canvas extent in the desktop); files are read whole (docs/web-layers.md).</source>
      <translation>Seulement pour les entrées qui ne sont pas des fichiers (XYZ, WMS, WMTS, WCS...) : elles sont récupérées sur cette emprise à la résolution de travail (vide : l'emprise du canevas de carte dans QGIS Desktop) ; les fichiers sont lus en entier (docs/web-layers.md).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>auto: CUDA, then Apple MPS, then CPU.</source>
      <translation>auto : CUDA, puis Apple MPS, puis le processeur.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Device</source>
      <translation>Périphérique de calcul</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>auto: bf16 on CUDA GPUs from Ampere on (fp16 on older ones) and on CPUs with native bf16 (AMX or AVX512-BF16), else fp32. fp16 needs CUDA.</source>
      <translation>auto : bf16 sur les GPU CUDA à partir d'Ampere (fp16 sur les plus anciens) et sur les processeurs avec bf16 natif (AMX ou AVX512-BF16), sinon fp32. fp16 nécessite CUDA.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Precision</source>
      <translation>Précision</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Download the chosen model from Hugging Face when it is not in the local cache (needs a token with access to the gated repository: the authentication configuration chosen in TreeSeg's Settings, or HF_TOKEN).</source>
      <translation>Télécharger le modèle choisi depuis Hugging Face s'il n'est pas dans le cache local (il faut un jeton ayant accès au dépôt restreint : la configuration d'authentification choisie dans les Paramètres de TreeSeg, ou HF_TOKEN).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Allow downloading weights</source>
      <translation>Autoriser le téléchargement des poids</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Released DINOv3 backbone, found in the Hugging Face cache (or downloaded when allowed). Ignored when a weights file is given.</source>
      <translation>Backbone DINOv3 publié, trouvé dans le cache Hugging Face (ou téléchargé si autorisé). Ignoré quand un fichier de poids est indiqué.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>DINOv3 model</source>
      <translation>Modèle DINOv3</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>A local DINOv3 checkpoint: Meta .pth or Hugging Face .safetensors. When given, it decides the model.</source>
      <translation>Un fichier de poids DINOv3 local : .pth de Meta ou .safetensors Hugging Face. S'il est indiqué, il détermine le modèle.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Weights file</source>
      <translation>Fichier de poids</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>16: one feature per 16x16 patch. 8 or 4: overlapping patches, denser features, 4x or 16x the encoding cost.</source>
      <translation>16 : un descripteur par patch de 16x16. 8 ou 4 : patchs qui se chevauchent, descripteurs plus denses, encodage 4 ou 16 fois plus coûteux.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Patch stride (px)</source>
      <translation>Pas des patchs (px)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>0 picks K at the elbow of the WCSS curve between the minimum and maximum K.</source>
      <translation>0 choisit K au coude de la courbe WCSS, entre le K minimal et le K maximal.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Number of clusters (0 = automatic)</source>
      <translation>Nombre de classes (0 = automatique)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Smallest K tried by the automatic choice.</source>
      <translation>Plus petit K essayé par le choix automatique.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Minimum K</source>
      <translation>K minimal</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Largest K tried by the automatic choice.</source>
      <translation>Plus grand K essayé par le choix automatique.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Maximum K</source>
      <translation>K maximal</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>The chosen K is the smallest K whose step to K+1 lowers WCSS by less than this percentage.</source>
      <translation>Le K retenu est le plus petit K dont le passage à K+1 réduit la WCSS de moins que ce pourcentage.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Elbow threshold (%)</source>
      <translation>Seuil du coude (%)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Seeds the fit sample and k-means: the same input, weights and seed give the same output.</source>
      <translation>Initialise l'échantillon d'ajustement et k-means : même entrée, mêmes poids et même graine donnent la même sortie.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Random seed</source>
      <translation>Graine aléatoire</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Side of the square tiles fed to the model; a multiple of 16.</source>
      <translation>Côté des tuiles carrées fournies au modèle ; un multiple de 16.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tile size (px)</source>
      <translation>Taille des tuiles (px)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Margin shared by neighbouring tiles and discarded, so there are no seams; a multiple of 16 and less than half the tile size.</source>
      <translation>Marge partagée par les tuiles voisines puis écartée, pour éviter les raccords ; un multiple de 16 inférieur à la moitié de la taille des tuiles.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tile overlap (px)</source>
      <translation>Chevauchement des tuiles (px)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tiles per forward pass; halved automatically when the GPU runs out of memory.</source>
      <translation>Nombre de tuiles par passe du modèle ; divisé par deux automatiquement quand la mémoire du GPU est saturée.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Batch size</source>
      <translation>Taille de lot</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>At most this many valid patch features, sampled over the whole raster, fit k-means.</source>
      <translation>Au plus ce nombre de descripteurs de patchs valides, échantillonnés sur tout le raster, servent à ajuster k-means.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Maximum k-means samples</source>
      <translation>Nombre maximal d'échantillons k-means</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Encode, cluster and find trees at this ground resolution (ground metres also in a geographic CRS); the outputs stay on the input's grid. A 16 px patch covers 16 x this: see docs/resolution.md for drone imagery. 0 or empty: the input's own pixels (optional, so models saved before it existed still run).</source>
      <translation>Encoder, classer et trouver les arbres à cette résolution au sol (en mètres au sol, y compris dans un SCR géographique) ; les sorties restent sur la grille de l'entrée. Un patch de 16 px couvre 16 fois cette valeur : voir docs/resolution.md pour les images de drone. 0 ou vide : les pixels de l'entrée (facultatif, pour que les modèles enregistrés avant son ajout fonctionnent encore).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Working resolution (m per pixel, 0 = input's)</source>
      <translation>Résolution de travail (m par pixel, 0 = celle de l'entrée)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>The rasters to fit on (any GDAL rasters with the same bands, or QGIS raster layers such as XYZ or WMS, fetched over the extent at the working resolution).</source>
      <translation>Les rasters sur lesquels ajuster (tous rasters GDAL ayant les mêmes bandes, ou des couches raster QGIS comme XYZ ou WMS, récupérées sur l'emprise à la résolution de travail).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Orthophotos</source>
      <translation>Orthophotos</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>The .tscm file to apply with Segment Trees' Cluster model input.</source>
      <translation>Le fichier .tscm à appliquer avec l'entrée Modèle de classes de Segmenter les arbres.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Cluster model</source>
      <translation>Modèle de classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>A .tscm file from Fit Cluster Model or a Segment Trees run: label with its clusters, band stretch and colours (no fit; the K settings are not used), so every raster shares labels. It must come from the same weights, patch stride and bands.</source>
      <translation>Un fichier .tscm issu d'Ajuster un modèle de classes ou d'un traitement Segmenter les arbres : étiqueter avec ses classes, son étirement des bandes et ses couleurs (pas d'ajustement ; les paramètres de K ne sont pas utilisés), pour que tous les rasters partagent les mêmes étiquettes. Il doit provenir des mêmes poids, du même pas de patch et des mêmes bandes.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Cluster model (apply)</source>
      <translation>Modèle de classes (appliquer)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>For RGBN imagery (e.g. band 4): clusters are then trees by their NDVI (at least 0.4) unless canopy heights are given.</source>
      <translation>Pour les images RVB + PIR (par ex. bande 4) : les classes sont alors des arbres selon leur NDVI (au moins 0,4), sauf si des hauteurs de canopée sont fournies.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Near-infrared band</source>
      <translation>Bande proche infrarouge</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>A canopy height model in metres (any CRS and resolution; resampled to the orthophoto's grid, its NoData honoured): clusters are trees by their median height, and crowns are split at treetops.</source>
      <translation>Un modèle de hauteur de canopée en mètres (tout SCR et toute résolution ; rééchantillonné sur la grille de l'orthophoto, son NoData respecté) : les classes sont des arbres selon leur hauteur médiane, et les houppiers sont séparés aux sommets des arbres.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Canopy height raster (m)</source>
      <translation>Raster de hauteur de canopée (m)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>With canopy heights: a cluster whose median height reaches this is trees.</source>
      <translation>Avec des hauteurs de canopée : une classe dont la hauteur médiane atteint cette valeur est classée en arbres.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Minimum tree height (m)</source>
      <translation>Hauteur minimale des arbres (m)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Cluster numbers that are trees, separated by commas (e.g. 2,5): they replace the rule. Empty: the rule decides (heights, else NDVI, else excess green and VARI).</source>
      <translation>Numéros des classes qui sont des arbres, séparés par des virgules (par ex. 2,5) : ils remplacent la règle. Vide : la règle décide (hauteurs, sinon NDVI, sinon excès de vert et VARI).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tree clusters (override)</source>
      <translation>Classes d'arbres (forcées)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Crowns smaller than this are left out of the crown polygons.</source>
      <translation>Les houppiers plus petits sont écartés des polygones de houppiers.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Minimum crown area (m²)</source>
      <translation>Surface minimale des houppiers (m²)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Byte GeoTIFF on the input's grid: labels 1..K (1 = most fit-sample patches), 0 = NoData; with a colour table and a .qml style beside it.</source>
      <translation>GeoTIFF Byte sur la grille de l'entrée : étiquettes 1..K (1 = la classe la plus représentée dans l'échantillon d'ajustement), 0 = NoData ; avec une table de couleurs et un style .qml à côté.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tree segmentation labels</source>
      <translation>Étiquettes de segmentation des arbres</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>WCSS per K, chosen K, cluster pixels and areas, model, weights and timings.</source>
      <translation>WCSS pour chaque K, K retenu, pixels et surfaces des classes, modèle, poids et durées.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Statistics report</source>
      <translation>Rapport de statistiques</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>One polygon per connected region of a cluster, with fields cluster and area.</source>
      <translation>Un polygone par région connexe d'une classe, avec les champs cluster et area.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Cluster polygons</source>
      <translation>Polygones des classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Save the clusters this run fits (.tscm), to apply them to other rasters with the Cluster model input.</source>
      <translation>Enregistrer les classes ajustées par ce traitement (.tscm), pour les appliquer à d'autres rasters avec l'entrée Modèle de classes.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Cluster model (save)</source>
      <translation>Modèle de classes (enregistrer)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Byte GeoTIFF on the labels' grid: 1 = tree canopy (the tree clusters), 0 = not trees, 255 = NoData; with a .qml style.</source>
      <translation>GeoTIFF Byte sur la grille des étiquettes : 1 = canopée (les classes d'arbres), 0 = pas d'arbres, 255 = NoData ; avec un style .qml.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tree canopy mask</source>
      <translation>Masque de canopée</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>One polygon per tree crown (watershed from the treetops of the canopy height, or of the distance to the canopy edge), with crown_id, area_m2, height_max, height_mean and cluster.</source>
      <translation>Un polygone par houppier (ligne de partage des eaux depuis les sommets de la hauteur de canopée, ou de la distance au bord de la canopée), avec crown_id, area_m2, height_max, height_mean et cluster.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tree crowns</source>
      <translation>Houppiers</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Meta's decoder ({decoder}) or a Hugging Face CHMv2 model.safetensors. Empty: the weights folder, then {repo}.</source>
      <translation>Le décodeur de Meta ({decoder}) ou un model.safetensors CHMv2 de Hugging Face. Vide : le dossier des poids, puis {repo}.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>The DINOv3 ViT-L/16 SAT-493M backbone for Meta's decoder. Empty: the weights folder, then the Hugging Face cache.</source>
      <translation>Le backbone DINOv3 ViT-L/16 SAT-493M pour le décodeur de Meta. Vide : le dossier des poids, puis le cache Hugging Face.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Backbone weights (with Meta's decoder)</source>
      <translation>Poids du backbone (avec le décodeur de Meta)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>The input is resampled to this resolution for the model (CHMv2 was trained at {gsd} m) and the heights back onto the input's grid. 0: no resampling.</source>
      <translation>L'entrée est rééchantillonnée à cette résolution pour le modèle (CHMv2 a été entraîné à {gsd} m) et les hauteurs ramenées sur la grille de l'entrée. 0 : pas de rééchantillonnage.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Model resolution (m per pixel, 0 = input's)</source>
      <translation>Résolution du modèle (m par pixel, 0 = celle de l'entrée)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>auto: bf16 on CUDA GPUs from Ampere on (fp16 on older ones) and on CPUs with native bf16, else fp32. fp16 needs CUDA.</source>
      <translation>auto : bf16 sur les GPU CUDA à partir d'Ampere (fp16 sur les plus anciens) et sur les processeurs avec bf16 natif, sinon fp32. fp16 nécessite CUDA.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Side of the tiles fed to the model, in model pixels; a multiple of 16.</source>
      <translation>Côté des tuiles fournies au modèle, en pixels du modèle ; un multiple de 16.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tile size (model px)</source>
      <translation>Taille des tuiles (px du modèle)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Neighbouring tiles overlap by this much and are cross-faded there, so there are no seams.</source>
      <translation>Les tuiles voisines se chevauchent d'autant et y sont fondues l'une dans l'autre, pour éviter les raccords.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tile overlap (model px)</source>
      <translation>Chevauchement des tuiles (px du modèle)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tiles per forward pass.</source>
      <translation>Tuiles par passe du modèle.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Download {repo} from Hugging Face when it is not cached (gated: needs a token with access).</source>
      <translation>Télécharger {repo} depuis Hugging Face s'il n'est pas en cache (accès restreint : il faut un jeton autorisé).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Float32 GeoTIFF of heights in metres on the input's grid, NoData -9999; with a .qml style.</source>
      <translation>GeoTIFF Float32 des hauteurs en mètres sur la grille de l'entrée, NoData -9999 ; avec un style .qml.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Canopy height</source>
      <translation>Hauteur de canopée</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Features drawn over the orthophoto, each naming its class in the class field: any layer (a scratch layer too), in any CRS. Polygons: every patch under them; points: the patch under each. Empty when a classifier is applied.</source>
      <translation>Des entités dessinées sur l'orthophoto, chacune nommant sa classe dans le champ de classe : toute couche (y compris une couche temporaire), dans n'importe quel SCR. Polygones : tous les patchs qu'ils recouvrent ; points : le patch sous chacun. Vide quand un classifieur est appliqué.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Examples (polygons or points)</source>
      <translation>Exemples (polygones ou points)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>The text or integer field of the examples that names each feature's class (every feature needs a value).</source>
      <translation>Le champ texte ou entier des exemples qui nomme la classe de chaque entité (chaque entité doit avoir une valeur).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Class field</source>
      <translation>Champ de classe</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Class names that are trees, separated by commas (e.g. conifer,broadleaf): the tree mask and crowns are made of them.</source>
      <translation>Les noms des classes qui sont des arbres, séparés par des virgules (par ex. conifer,broadleaf) : le masque de canopée et les houppiers en sont faits.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Tree classes</source>
      <translation>Classes d'arbres</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>A {classifier_extension} file saved by an earlier run: classify with it instead of fitting (no examples). It must come from the same weights, patch stride and bands.</source>
      <translation>Un fichier {classifier_extension} enregistré par un traitement antérieur : classer avec lui au lieu d'ajuster (sans exemples). Il doit provenir des mêmes poids, du même pas de patch et des mêmes bandes.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Classifier (apply)</source>
      <translation>Classifieur (appliquer)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Estimate the accuracy by leaving out whole example features (never single pixels, whose neighbours would inflate it): needs at least two features per class.</source>
      <translation>Estimer l'exactitude en écartant des entités d'exemple entières (jamais des pixels isolés, dont les voisins la gonfleraient) : il faut au moins deux entités par classe.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Cross-validate by example</source>
      <translation>Validation croisée par exemple</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>The L2 penalty on the classifier's weights; larger gives smoother, less confident classes.</source>
      <translation>La pénalité L2 sur les poids du classifieur ; plus elle est grande, plus les classes sont lisses et moins sûres.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Regularisation (L2)</source>
      <translation>Régularisation (L2)</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Byte GeoTIFF on the input's grid: class numbers 1..N in the order of the report, 0 = NoData, with the class names in a colour table and a .qml style. With one class: the similarity to the examples, 0-100.</source>
      <translation>GeoTIFF Byte sur la grille de l'entrée : numéros de classe 1..N dans l'ordre du rapport, 0 = NoData, avec les noms des classes dans une table de couleurs et un style .qml. Avec une seule classe : la similarité avec les exemples, de 0 à 100.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Classes</source>
      <translation>Classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Byte GeoTIFF on the input's grid: the winning class's probability in percent (0-100).</source>
      <translation>GeoTIFF Byte sur la grille de l'entrée : la probabilité de la classe retenue, en pourcentage (0-100).</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Confidence</source>
      <translation>Confiance</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>One polygon per connected region of a class, with fields class_id, class (its name) and area.</source>
      <translation>Un polygone par région connexe d'une classe, avec les champs class_id, class (son nom) et area.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Class polygons</source>
      <translation>Polygones des classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Byte GeoTIFF on the classes' grid: 1 = tree canopy (the tree classes), 0 = not trees, 255 = NoData; with a .qml style.</source>
      <translation>GeoTIFF Byte sur la grille des classes : 1 = canopée (les classes d'arbres), 0 = pas d'arbres, 255 = NoData ; avec un style .qml.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>One polygon per tree crown in the tree classes (watershed from the treetops of the distance to the canopy edge), with crown_id and area_m2.</source>
      <translation>Un polygone par houppier dans les classes d'arbres (ligne de partage des eaux depuis les sommets de la distance au bord de la canopée), avec crown_id et area_m2.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>The examples per class, the cross-validated accuracy, per-class precision, recall and F1, the confusion matrix, class areas, model and timings.</source>
      <translation>Les exemples par classe, l'exactitude en validation croisée, la précision, le rappel et le F1 par classe, la matrice de confusion, les surfaces des classes, le modèle et les durées.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Save the fitted classifier ({classifier_extension}), to apply it to other rasters with the Classifier input or the batch command.</source>
      <translation>Enregistrer le classifieur ajusté ({classifier_extension}), pour l'appliquer à d'autres rasters avec l'entrée Classifieur ou la commande de traitement par lot.</translation>
    </message>
    <message>
      <location filename="../processing_provider/parameters.py" />
      <source>Classifier (save)</source>
      <translation>Classifieur (enregistrer)</translation>
    </message>
    <message>
      <location filename="../processing_provider/provider.py" />
      <source>Tree segmentation</source>
      <translation>Segmentation des arbres</translation>
    </message>
    <message>
      <location filename="../processing_provider/provider.py" />
      <source>Tree segmentation (DINOv3 + k-means)</source>
      <translation>Segmentation des arbres (DINOv3 + k-means)</translation>
    </message>
    <message>
      <location filename="../processing_provider/provider.py" />
      <source>{info}; PyTorch not installed</source>
      <translation>{info} ; PyTorch non installé</translation>
    </message>
    <message>
      <location filename="../processing_provider/resolution_widget.py" />
      <source>input: pixel size in metres unknown (no CRS)</source>
      <translation>entrée : taille de pixel en mètres inconnue (pas de SCR)</translation>
    </message>
    <message>
      <location filename="../processing_provider/resolution_widget.py" />
      <source>input: a web layer, no pixel size of its own (give one)</source>
      <translation>entrée : une couche web, sans taille de pixel propre (indiquez-en une)</translation>
    </message>
    <message>
      <location filename="../processing_provider/resolution_widget.py" />
      <source>input: {size} m per pixel</source>
      <translation>entrée : {size} m par pixel</translation>
    </message>
    <message>
      <location filename="../processing_provider/resolution_widget.py" />
      <source>m per pixel</source>
      <translation>m par pixel</translation>
    </message>
    <message>
      <location filename="../processing_provider/results.py" />
      <source>Could not apply the style {style}: {message}</source>
      <translation>Impossible d'appliquer le style {style} : {message}</translation>
    </message>
    <message>
      <location filename="../processing_provider/run_summary.py" />
      <source>{area} map units²</source>
      <translation>{area} unités de carte²</translation>
    </message>
    <message>
      <location filename="../processing_provider/run_summary.py" />
      <source>trees {share} % ({area})</source>
      <translation>arbres {share} % ({area})</translation>
    </message>
    <message>
      <location filename="../processing_provider/run_summary.py" />
      <source>{count} crowns</source>
      <translation>{count} houppiers</translation>
    </message>
    <message>
      <location filename="../processing_provider/run_summary.py" />
      <source>similarity to {name}</source>
      <translation>similarité avec {name}</translation>
    </message>
    <message>
      <location filename="../processing_provider/run_summary.py" />
      <source>accuracy {accuracy} % by example</source>
      <translation>exactitude {accuracy} % par exemple</translation>
    </message>
    <message>
      <location filename="../processing_provider/run_summary.py" />
      <source>{count} warnings</source>
      <translation>{count} avertissements</translation>
    </message>
    <message>
      <location filename="../processing_provider/run_summary.py" />
      <source>1 warning</source>
      <translation>1 avertissement</translation>
    </message>
    <message>
      <location filename="../processing_provider/run_summary.py" />
      <source>Open report</source>
      <translation>Ouvrir le rapport</translation>
    </message>
    <message>
      <location filename="../processing_provider/segment_trees.py" />
      <source>The orthophoto to segment: any GDAL raster (GeoTIFF, VRT, JPEG2000...) or any QGIS raster layer (XYZ, WMS, WMTS, WCS...: fetched over the extent at the working resolution).</source>
      <translation>L'orthophoto à segmenter : tout raster GDAL (GeoTIFF, VRT, JPEG2000...) ou toute couche raster QGIS (XYZ, WMS, WMTS, WCS... : récupérée sur l'emprise à la résolution de travail).</translation>
    </message>
    <message>
      <location filename="../processing_provider/segment_trees.py" />
      <source>Segment Trees</source>
      <translation>Segmenter les arbres</translation>
    </message>
    <message>
      <location filename="../processing_provider/segment_trees.py" />
      <source>trees,forest,canopy,dinov3,k-means,clustering,unsupervised,orthophoto</source>
      <translation>arbres,forêt,canopée,dinov3,k-means,classification,non supervisée,orthophoto,trees,clustering</translation>
    </message>
    <message>
      <location filename="../processing_provider/segment_trees.py" />
      <source>cluster polygons</source>
      <translation>polygones des classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/segment_trees.py" />
      <source>clusters</source>
      <translation>classes</translation>
    </message>
    <message>
      <location filename="../processing_provider/segment_trees.py" />
      <source>Segment Trees report</source>
      <translation>Rapport de Segmenter les arbres</translation>
    </message>
    <message>
      <location filename="../processing_provider/segment_trees.py" />
      <source>Tree clusters '{text}': give cluster numbers separated by commas, e.g. 2,5.</source>
      <translation>Classes d'arbres « {text} » : indiquez des numéros de classe séparés par des virgules, par ex. 2,5.</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>The layer '{layer}' ('{provider}' provider) has no extent of its own: give the EXTENT to fetch (in the dialog: Extent &gt; Use Map Canvas Extent; in qgis_process: EXTENT='xmin,xmax,ymin,ymax [EPSG:code]').</source>
      <translation>La couche « {layer} » (fournisseur « {provider} ») n'a pas d'emprise propre : indiquez l'emprise (EXTENT) à récupérer (dans la boîte de dialogue : Emprise &gt; Utiliser l'emprise du canevas de carte ; avec qgis_process : EXTENT='xmin,xmax,ymin,ymax [EPSG:code]').</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>The layer '{layer}' ('{provider}' provider) has no pixel size of its own: give {parameter} in metres per pixel (e.g. 0.1 for 10 cm aerial imagery).</source>
      <translation>La couche « {layer} » (fournisseur « {provider} ») n'a pas de taille de pixel propre : indiquez {parameter} en mètres par pixel (par ex. 0.1 pour une image aérienne à 10 cm).</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>The CRS of layer '{layer}' ({crs}) does not tell its size in metres, so {parameter}={resolution} m cannot be fetched. Give the layer a CRS.</source>
      <translation>Le SCR de la couche « {layer} » ({crs}) ne permet pas de connaître sa taille en mètres, {parameter}={resolution} m ne peut donc pas être récupéré. Attribuez un SCR à la couche.</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>none</source>
      <translation>aucun</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>a smaller extent</source>
      <translation>une emprise plus petite</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>{parameter} of at least {resolution} m, or {fix}</source>
      <translation>{parameter} d'au moins {resolution} m, ou {fix}</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>Fetching '{layer}' over this extent is {width} x {height} = {pixels} px, more than the {limit} px a layer that is not a file may be fetched at. Choose {fix}.</source>
      <translation>Récupérer « {layer} » sur cette emprise représente {width} x {height} = {pixels} px, plus que les {limit} px auxquels une couche qui n'est pas un fichier peut être récupérée. Choisissez {fix}.</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>The '{provider}' provider returned no block for {rect}: {reason}.</source>
      <translation>Le fournisseur « {provider} » n'a renvoyé aucun bloc pour {rect} : {reason}.</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>no reason given</source>
      <translation>aucune raison indiquée</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>The layer '{layer}' returned only transparent pixels over {extent}: the extent is outside its data or the service failed (see its tab in the Log Messages panel). Check the extent and the layer.</source>
      <translation>La couche « {layer} » n'a renvoyé que des pixels transparents sur {extent} : l'emprise est en dehors de ses données ou le service a échoué (voir son onglet dans le panneau Journal des messages). Vérifiez l'emprise et la couche.</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>at {resolution} m per pixel</source>
      <translation>à {resolution} m par pixel</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>at its own pixel size</source>
      <translation>à sa propre taille de pixel</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>Fetching '{layer}' through QGIS's '{provider}' provider {how}: {width} x {height} px over {extent} ({crs}), into a temporary GeoTIFF.</source>
      <translation>Récupération de « {layer} » par le fournisseur « {provider} » de QGIS {how} : {width} x {height} px sur {extent} ({crs}), dans un GeoTIFF temporaire.</translation>
    </message>
    <message>
      <location filename="../processing_provider/web_input.py" />
      <source>Fetching {layer}</source>
      <translation>Récupération de {layer}</translation>
    </message>
    <message>
      <location filename="../processing_provider/worker_algorithm.py" />
      <source>Bands '{text}': give band numbers such as 3,2,1 (or one band), or leave it empty.</source>
      <translation>Bandes « {text} » : indiquez des numéros de bande comme 3,2,1 (ou une seule bande), ou laissez vide.</translation>
    </message>
    <message>
      <location filename="../processing_provider/worker_algorithm.py" />
      <source>Segmentation</source>
      <translation>Segmentation</translation>
    </message>
    <message>
      <location filename="../processing_provider/worker_algorithm.py" />
      <source>Band(s) {wrong} do not exist: the input has bands 1 to {count}. Choose band numbers in that range.</source>
      <translation>La ou les bandes {wrong} n'existent pas : l'entrée a les bandes 1 à {count}. Choisissez des numéros de bande dans cet intervalle.</translation>
    </message>
    <message>
      <location filename="../processing_provider/worker_algorithm.py" />
      <source>No extent given: '{layer}' is fetched over the map canvas's extent.</source>
      <translation>Aucune emprise indiquée : « {layer} » est récupérée sur l'emprise du canevas de carte.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/diagnostics_dialog.py" />
      <source>Paste this report into your bug report (it holds no token or password). Headless: &lt;tt&gt;qgis_process run treeseg:diagnostics&lt;/tt&gt;.</source>
      <translation>Collez ce rapport dans votre rapport de bogue (il ne contient ni jeton ni mot de passe). Sans interface : &lt;tt&gt;qgis_process run treeseg:diagnostics&lt;/tt&gt;.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/diagnostics_dialog.py" />
      <source>TreeSeg – Diagnostics</source>
      <translation>TreeSeg – Diagnostic</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/diagnostics_dialog.py" />
      <source>Copy to clipboard</source>
      <translation>Copier dans le presse-papiers</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>TreeSeg: checking what a run needs</source>
      <translation>TreeSeg : vérification de ce qu'un traitement nécessite</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>TreeSeg – Getting started</source>
      <translation>TreeSeg – Prise en main</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Segment Trees needs three things. Each shows its state and what fixes it; QGIS stays usable meanwhile. This window opens again from &lt;i&gt;Raster &amp;gt; Tree Segmentation &amp;gt; Getting Started…&lt;/i&gt;</source>
      <translation>Segmenter les arbres a besoin de trois choses. Chacune indique son état et ce qui y remédie ; QGIS reste utilisable pendant ce temps. Cette fenêtre se rouvre depuis &lt;i&gt;Raster &amp;gt; Segmentation des arbres &amp;gt; Prise en main…&lt;/i&gt;</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Install…</source>
      <translation>Installer…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>DINOv3 weights are gated by Meta. Either &lt;b&gt;(a)&lt;/b&gt; sign in to Hugging Face, open the model's page and accept the licence, create a read token and choose it in &lt;i&gt;Weights… &amp;gt; Settings…&lt;/i&gt;, tick &lt;i&gt;Allow downloading weights&lt;/i&gt; and press &lt;i&gt;Download&lt;/i&gt;; or &lt;b&gt;(b)&lt;/b&gt; request the files through Meta's form (the links come by e-mail), then press &lt;i&gt;Add file…&lt;/i&gt; to add the downloaded file.</source>
      <translation>L'accès aux poids DINOv3 est restreint par Meta. Soit &lt;b&gt;(a)&lt;/b&gt; connectez-vous à Hugging Face, ouvrez la page du modèle et acceptez la licence, créez un jeton de lecture et choisissez-le dans &lt;i&gt;Poids… &amp;gt; Paramètres…&lt;/i&gt;, cochez &lt;i&gt;Autoriser le téléchargement des poids&lt;/i&gt; et cliquez sur &lt;i&gt;Télécharger&lt;/i&gt; ; soit &lt;b&gt;(b)&lt;/b&gt; demandez les fichiers via le formulaire de Meta (les liens arrivent par e-mail), puis cliquez sur &lt;i&gt;Ajouter un fichier…&lt;/i&gt; pour ajouter le fichier téléchargé.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>{model} on Hugging Face</source>
      <translation>{model} sur Hugging Face</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Meta's request form</source>
      <translation>Formulaire de demande de Meta</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Add file…</source>
      <translation>Ajouter un fichier…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Weights…</source>
      <translation>Poids…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Install the CUDA build…</source>
      <translation>Installer la version CUDA…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Diagnostics…</source>
      <translation>Diagnostic…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>1. Python packages</source>
      <translation>1. Paquets Python</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>2. DINOv3 weights</source>
      <translation>2. Poids DINOv3</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>3. Device</source>
      <translation>3. Périphérique de calcul</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Check again</source>
      <translation>Vérifier à nouveau</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Checking…</source>
      <translation>Vérification…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>The check failed: {error}</source>
      <translation>La vérification a échoué : {error}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Ready</source>
      <translation>Prêt</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Missing</source>
      <translation>Absent</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Check</source>
      <translation>À vérifier</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>{state}: {text}</source>
      <translation>{state} : {text}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>torch, safetensors and huggingface_hub are installed.</source>
      <translation>torch, safetensors et huggingface_hub sont installés.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>{problems}. Press &lt;i&gt;Install…&lt;/i&gt;: pip installs them into TreeSeg's own folder (QGIS's numpy stays), then restart QGIS.</source>
      <translation>{problems}. Cliquez sur &lt;i&gt;Installer…&lt;/i&gt; : pip les installe dans le dossier propre à TreeSeg (le numpy de QGIS reste tel quel), puis redémarrez QGIS.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Segment Trees finds {models}.</source>
      <translation>Segmenter les arbres trouve {models}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>no DINOv3 weights in the weights folder (&lt;tt&gt;{folder}&lt;/tt&gt;) or the Hugging Face and torch hub caches.</source>
      <translation>aucun poids DINOv3 dans le dossier des poids (&lt;tt&gt;{folder}&lt;/tt&gt;) ni dans les caches Hugging Face et torch hub.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>An NVIDIA GPU was found ({gpu}).</source>
      <translation>Un GPU NVIDIA a été trouvé ({gpu}).</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>No NVIDIA GPU was found (nvidia-smi): runs use the CPU, more slowly.</source>
      <translation>Aucun GPU NVIDIA trouvé (nvidia-smi) : les traitements utilisent le processeur, plus lentement.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Install… selects PyTorch's CUDA build.</source>
      <translation>Installer… sélectionne la version CUDA de PyTorch.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>Install… selects PyTorch's CPU build.</source>
      <translation>Installer… sélectionne la version de PyTorch pour processeur.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>PyTorch is not installed yet (step 1). {gpu} {build}</source>
      <translation>PyTorch n'est pas encore installé (étape 1). {gpu} {build}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>PyTorch does not import: {error}. Install it again (step 1).</source>
      <translation>PyTorch ne s'importe pas : {error}. Réinstallez-le (étape 1).</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>CPU-only build</source>
      <translation>version pour processeur seulement</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>CUDA {cuda} build</source>
      <translation>version CUDA {cuda}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>PyTorch {version} ({build}).</source>
      <translation>PyTorch {version} ({build}).</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>{torch} Runs use the GPU: {device}.</source>
      <translation>{torch} Les traitements utilisent le GPU : {device}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>{torch} Runs use Apple's GPU (MPS).</source>
      <translation>{torch} Les traitements utilisent le GPU d'Apple (MPS).</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>{torch} {gpu} This PyTorch cannot use it, so runs use the CPU: install PyTorch's CUDA build into TreeSeg's folder with &lt;i&gt;Install the CUDA build…&lt;/i&gt;.</source>
      <translation>{torch} {gpu} Ce PyTorch ne peut pas l'utiliser, les traitements utilisent donc le processeur : installez la version CUDA de PyTorch dans le dossier de TreeSeg avec &lt;i&gt;Installer la version CUDA…&lt;/i&gt;.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/getting_started_dialog.py" />
      <source>{torch} {gpu} This PyTorch cannot use it (NVIDIA driver missing or too old?), so runs use the CPU: see &lt;i&gt;Diagnostics…&lt;/i&gt;.</source>
      <translation>{torch} {gpu} Ce PyTorch ne peut pas l'utiliser (pilote NVIDIA absent ou trop ancien ?), les traitements utilisent donc le processeur : voir &lt;i&gt;Diagnostic…&lt;/i&gt;.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>Installing TreeSeg's Python packages</source>
      <translation>Installation des paquets Python de TreeSeg</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>TreeSeg – Install Python packages</source>
      <translation>TreeSeg – Installer les paquets Python</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>TreeSeg needs these Python packages:</source>
      <translation>TreeSeg a besoin de ces paquets Python :</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>An NVIDIA GPU was found ({gpu}): the CUDA build is selected.</source>
      <translation>Un GPU NVIDIA a été trouvé ({gpu}) : la version CUDA est sélectionnée.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>No NVIDIA GPU was found (nvidia-smi): the CPU build is selected.</source>
      <translation>Aucun GPU NVIDIA trouvé (nvidia-smi) : la version pour processeur est sélectionnée.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>pip will install &lt;b&gt;{packages}&lt;/b&gt; into&lt;br&gt;&lt;code&gt;{folder}&lt;/code&gt;&lt;br&gt;(TreeSeg's own folder: QGIS's Python and its numpy are not changed). It downloads from PyPI and download.pytorch.org; a CUDA build of PyTorch is {cuda}, the CPU build {cpu}.</source>
      <translation>pip va installer &lt;b&gt;{packages}&lt;/b&gt; dans&lt;br&gt;&lt;code&gt;{folder}&lt;/code&gt;&lt;br&gt;(le dossier propre à TreeSeg : le Python de QGIS et son numpy ne sont pas modifiés). Il télécharge depuis PyPI et download.pytorch.org ; une version CUDA de PyTorch pèse {cuda}, la version pour processeur {cpu}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>PyTorch for the CPU only (smaller; works everywhere)</source>
      <translation>PyTorch pour processeur seulement (plus léger ; fonctionne partout)</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>PyTorch with CUDA (NVIDIA GPU with a recent driver)</source>
      <translation>PyTorch avec CUDA (GPU NVIDIA avec un pilote récent)</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>pip's output appears here.</source>
      <translation>La sortie de pip s'affiche ici.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>Install</source>
      <translation>Installer</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>Cancel installation</source>
      <translation>Annuler l'installation</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>Running pip…</source>
      <translation>pip en cours…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>Installation canceled; nothing was installed.</source>
      <translation>Installation annulée ; rien n'a été installé.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>TreeSeg uses the new packages after QGIS restarts.</source>
      <translation>TreeSeg utilisera les nouveaux paquets après le redémarrage de QGIS.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/installer_dialog.py" />
      <source>Restart QGIS</source>
      <translation>Redémarrer QGIS</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>The Hugging Face access token is kept in QGIS's authentication database, never in the settings: add a &lt;b&gt;Basic authentication&lt;/b&gt; configuration (any user name, the token as &lt;b&gt;password&lt;/b&gt;) with the green + button and choose it here. Without one, the HF_TOKEN environment variable is used.</source>
      <translation>Le jeton d'accès Hugging Face est conservé dans la base d'authentification de QGIS, jamais dans les paramètres : ajoutez une configuration &lt;b&gt;Authentification basique&lt;/b&gt; (nom d'utilisateur quelconque, le jeton comme &lt;b&gt;mot de passe&lt;/b&gt;) avec le bouton + vert et choisissez-la ici. Sans configuration, la variable d'environnement HF_TOKEN est utilisée.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>TreeSeg – Settings</source>
      <translation>TreeSeg – Paramètres</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>Where Weights &gt; Add file… copies verified weights; Segment Trees looks here first for the chosen model.</source>
      <translation>Où Poids &gt; Ajouter un fichier… copie les poids vérifiés ; Segmenter les arbres cherche d'abord ici le modèle choisi.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>Allow downloading weights from Hugging Face</source>
      <translation>Autoriser le téléchargement des poids depuis Hugging Face</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>The default of 'Allow downloading weights' in Segment Trees, in QGIS desktop. Headless runs (qgis_process) download only when asked to.</source>
      <translation>Valeur par défaut de « Autoriser le téléchargement des poids » dans Segmenter les arbres, dans QGIS Desktop. Les traitements sans interface (qgis_process) ne téléchargent que sur demande.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>Weights folder</source>
      <translation>Dossier des poids</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>Hugging Face token</source>
      <translation>Jeton Hugging Face</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>Default device</source>
      <translation>Périphérique par défaut</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/settings_dialog.py" />
      <source>Default precision</source>
      <translation>Précision par défaut</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Model</source>
      <translation>Modèle</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Parameters</source>
      <translation>Paramètres</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Licence</source>
      <translation>Licence</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Status</source>
      <translation>État</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>weights folder</source>
      <translation>dossier des poids</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Hugging Face cache</source>
      <translation>cache Hugging Face</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>torch hub cache</source>
      <translation>cache de torch hub</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Hugging Face model folder</source>
      <translation>dossier de modèle Hugging Face</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>downloaded from Hugging Face</source>
      <translation>téléchargé depuis Hugging Face</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>local file</source>
      <translation>fichier local</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Gated: Hugging Face or Meta's form</source>
      <translation>Accès restreint : Hugging Face ou formulaire de Meta</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Gated: Meta's form only</source>
      <translation>Accès restreint : formulaire de Meta uniquement</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Accept the licence at https://huggingface.co/{repo} (the model with its backbone), or request {file} through Meta's form ({form}): Meta's decoder holds only the head and runs with the ViT-L/16 (SAT-493M) weights listed above.</source>
      <translation>Acceptez la licence sur https://huggingface.co/{repo} (le modèle avec son backbone), ou demandez {file} via le formulaire de Meta ({form}) : le décodeur de Meta ne contient que la tête et s'utilise avec les poids ViT-L/16 (SAT-493M) listés plus haut.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>request {file} through Meta's form ({form})</source>
      <translation>demandez {file} via le formulaire de Meta ({form})</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Accept the DINOv3 licence at https://huggingface.co/{repo} before downloading, or {meta}.</source>
      <translation>Acceptez la licence DINOv3 sur https://huggingface.co/{repo} avant de télécharger, ou {meta}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Not on Hugging Face: {meta}.</source>
      <translation>Absent de Hugging Face : {meta}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Found in the {where}: {file}</source>
      <translation>Trouvé dans le {where} : {file}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source> (not verified yet: select it and press Verify)</source>
      <translation> (pas encore vérifié : sélectionnez-le et cliquez sur Vérifier)</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>; verified: {loaded}/{total} tensors, SHA-256 {sha256}</source>
      <translation> ; vérifié : {loaded}/{total} tenseurs, SHA-256 {sha256}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>TreeSeg – DINOv3 weights</source>
      <translation>TreeSeg – Poids DINOv3</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Download</source>
      <translation>Télécharger</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Verify</source>
      <translation>Vérifier</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Settings…</source>
      <translation>Paramètres…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Cancel</source>
      <translation>Annuler</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Weights folder: {folder}.</source>
      <translation>Dossier des poids : {folder}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Offline (HF_HUB_OFFLINE is set): nothing can be downloaded. Get the weights on another machine (Hugging Face or Meta's form) and import them here with Add file…</source>
      <translation>Hors ligne (HF_HUB_OFFLINE est défini) : aucun téléchargement possible. Récupérez les poids sur une autre machine (Hugging Face ou formulaire de Meta) et importez-les ici avec Ajouter un fichier…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Downloads are off: allow them in Settings, or get the weights by hand and import them with Add file…</source>
      <translation>Les téléchargements sont désactivés : autorisez-les dans les Paramètres, ou récupérez les poids à la main et importez-les avec Ajouter un fichier…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>No Hugging Face token: choose an authentication configuration in Settings (or set HF_TOKEN) to download.</source>
      <translation>Pas de jeton Hugging Face : choisissez une configuration d'authentification dans les Paramètres (ou définissez HF_TOKEN) pour télécharger.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Downloads go to the Hugging Face cache, where Segment Trees finds them.</source>
      <translation>Les téléchargements vont dans le cache Hugging Face, où Segmenter les arbres les trouve.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>{task}: canceled.</source>
      <translation>{task} : annulé.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Downloading {model}</source>
      <translation>Téléchargement de {model}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Downloaded {model} to {path}. Press Verify to check it.</source>
      <translation>{model} téléchargé dans {path}. Cliquez sur Vérifier pour le contrôler.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Verifying {model}</source>
      <translation>Vérification de {model}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Add DINOv3 or CHMv2 weights</source>
      <translation>Ajouter des poids DINOv3 ou CHMv2</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>DINOv3 / CHMv2 weights (*.pth *.safetensors)</source>
      <translation>Poids DINOv3 / CHMv2 (*.pth *.safetensors)</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Importing {file}</source>
      <translation>Importation de {file}</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>a custom ViT (not a released DINOv3 model)</source>
      <translation>un ViT personnalisé (pas un modèle DINOv3 publié)</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Verified {path}: {what}, {loaded}/{total} tensors, SHA-256 {sha256}.</source>
      <translation>{path} vérifié : {what}, {loaded}/{total} tenseurs, SHA-256 {sha256}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_dialog.py" />
      <source>Not recognisable as a released file (name, hash or dataset), so no model name finds it: choose it as Weights file in Segment Trees or Canopy Height.</source>
      <translation>Non reconnaissable comme un fichier publié (nom, empreinte ou jeu de données), aucun nom de modèle ne le trouve donc : choisissez-le comme Fichier de poids dans Segmenter les arbres ou Hauteur de canopée.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_tasks.py" />
      <source>on a machine with internet, accept the licence at https://huggingface.co/{repo} and run 'huggingface-cli download {repo}', or </source>
      <translation>sur une machine connectée, acceptez la licence sur https://huggingface.co/{repo} et lancez « huggingface-cli download {repo} », ou </translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_tasks.py" />
      <source>To add the weights by hand: {hub}request {file} through Meta's form ({form}); then use Add file... here, or give the file as Weights file.</source>
      <translation>Pour ajouter les poids à la main : {hub}demandez {file} via le formulaire de Meta ({form}) ; utilisez ensuite Ajouter un fichier… ici, ou indiquez le fichier comme Fichier de poids.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_tasks.py" />
      <source>the .pth file</source>
      <translation>le fichier .pth</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_tasks.py" />
      <source>Offline: HF_HUB_OFFLINE is set, so {repo} cannot be downloaded.</source>
      <translation>Hors ligne : HF_HUB_OFFLINE est défini, {repo} ne peut donc pas être téléchargé.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_tasks.py" />
      <source>Downloading {repo} failed: {reason}.</source>
      <translation>Le téléchargement de {repo} a échoué : {reason}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_tasks.py" />
      <source>{file}: choose a .pth or .safetensors file.</source>
      <translation>{file} : choisissez un fichier .pth ou .safetensors.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/gui/weights_tasks.py" />
      <source>{destination} already exists; remove it first to import {file}.</source>
      <translation>{destination} existe déjà ; supprimez-le d'abord pour importer {file}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>&amp;Tree Segmentation</source>
      <translation>&amp;Segmentation des arbres</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Segment Trees…</source>
      <translation>Segmenter les arbres…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Segment trees in an orthophoto with DINOv3 features and k-means</source>
      <translation>Segmenter les arbres d'une orthophoto avec les descripteurs DINOv3 et k-means</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>DINOv3 weights: status, download, verify, add a file</source>
      <translation>Poids DINOv3 : état, téléchargement, vérification, ajout d'un fichier</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Weights folder, Hugging Face token, downloads, default device and precision</source>
      <translation>Dossier des poids, jeton Hugging Face, téléchargements, périphérique et précision par défaut</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Versions, GPU, CPU, libraries and folders, to copy into a bug report</source>
      <translation>Versions, GPU, processeur, bibliothèques et dossiers, à copier dans un rapport de bogue</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Getting Started…</source>
      <translation>Prise en main…</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>What a run needs (Python packages, weights, device), and how to get it</source>
      <translation>Ce qu'un traitement nécessite (paquets Python, poids, périphérique de calcul) et comment l'obtenir</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/plugin.py" />
      <source>Python packages needed: {problems}.</source>
      <translation>Paquets Python nécessaires : {problems}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/settings.py" />
      <source>QGIS's authentication system is disabled (no Qt crypto support), so TreeSeg cannot read the Hugging Face token; set HF_TOKEN instead.</source>
      <translation>Le système d'authentification de QGIS est désactivé (pas de prise en charge cryptographique de Qt), TreeSeg ne peut donc pas lire le jeton Hugging Face ; définissez plutôt HF_TOKEN.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/settings.py" />
      <source>Authentication configuration '{config}' could not be read (removed, or the master password was not given). Choose another one in TreeSeg &gt; Settings.</source>
      <translation>La configuration d'authentification « {config} » n'a pas pu être lue (supprimée, ou mot de passe principal non saisi). Choisissez-en une autre dans TreeSeg &gt; Paramètres.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/settings.py" />
      <source>Authentication configuration '{config}' is of type {method}; TreeSeg reads the token from the password of a {expected} configuration.</source>
      <translation>La configuration d'authentification « {config} » est de type {method} ; TreeSeg lit le jeton dans le mot de passe d'une configuration {expected}.</translation>
    </message>
    <message>
      <location filename="../treeseg_plugin/settings.py" />
      <source>Authentication configuration '{config}' has an empty password; put the Hugging Face access token there.</source>
      <translation>La configuration d'authentification « {config} » a un mot de passe vide ; mettez-y le jeton d'accès Hugging Face.</translation>
    </message>
  </context>
</TS>
